"""What every command shares: its option groups (model, data, run), declared once with one help
text each; the types that check a value (and an input file or an output folder) while the
arguments are parsed, before torch is imported; one-line errors with exit code 2; grid options
that start with '-'."""

from __future__ import annotations

import argparse
import math
import os
import re
import sys
import warnings
from collections.abc import Callable, Mapping, Sequence

from landscape.cli._declared import declared
from landscape.errors import LandscapeError, one_line
from landscape.io.files import check_folder
from landscape.runtime.parallel import end_interrupted, hold_interrupts, join, joined, launcher_rank, program

GRID_OPTIONS = ("--x", "--y")
HINTS = {"OutputExists": "use --overwrite to replace it"}  # what every command adds to these errors


class Parser(argparse.ArgumentParser):
    """An ArgumentParser whose mistakes are :class:`LandscapeError`: one line, exit code 2."""

    def error(self, message: str):  # argparse's default prints the usage block, then exits
        raise LandscapeError(f"{message} (see {self.prog} --help)")

    def parse_known_args(self, args=None, namespace=None):
        """Values that start with '-' and a digit (``--xlim -0.5:1.5``, ``--vmin -1e-3``) are values,
        not options: every option that takes one value accepts them as ``--xlim=-0.5:1.5``."""
        args = list(sys.argv[1:] if args is None else args)
        single = [s for a in self._actions if a.option_strings and a.nargs is None for s in a.option_strings]
        return super().parse_known_args(join_negative_values(args, single), namespace)

    def given(self, argv: Sequence[str]) -> set[str]:
        """The options ``argv`` gives (their ``dest``), whatever their values: what a command
        refuses where it would ignore it."""
        saved = {a: a.default for a in self._actions}, dict(self._defaults)
        try:
            for action in self._actions:
                action.default = argparse.SUPPRESS
            self._defaults.clear()
            ns, _ = super().parse_known_args(join_negative_values(list(argv), [
                s for a in self._actions if a.option_strings and a.nargs is None for s in a.option_strings]))
        finally:
            for action, default in saved[0].items():
                action.default = default
            self._defaults.update(saved[1])
        return set(vars(ns))


LARGEST = 2**63 - 1  # integers beyond int64 (seeds, counts) fit neither torch nor HDF5


def positive(text: str) -> int:
    """An argparse type: an integer from 1 to 2**63 - 1."""
    value = int(text)
    if not 1 <= value <= LARGEST:
        raise ValueError(text)
    return value


def non_negative(text: str) -> int:
    """An argparse type: an integer from 0 to 2**63 - 1 (a seed)."""
    value = int(text)
    if not 0 <= value <= LARGEST:
        raise ValueError(text)
    return value


def positive_float(text: str) -> float:
    """An argparse type: a finite number > 0."""
    value = float(text)
    if not (value > 0) or value == float("inf"):
        raise ValueError(text)
    return value


def finite_float(text: str) -> float:
    """An argparse type: a finite number (no nan, no inf)."""
    value = float(text)
    if not math.isfinite(value):
        raise ValueError(text)
    return value


positive.__name__ = "positive integer (at most 2**63 - 1)"  # argparse names the type in its message
non_negative.__name__ = "non-negative integer (at most 2**63 - 1)"
positive_float.__name__ = "positive number"
finite_float.__name__ = "finite number"


def shape(text: str) -> tuple[int, ...]:
    """An argparse type: a sample's shape ``C,H,W`` (or ``CxHxW``)."""
    try:
        dims = tuple(int(t) for t in text.lower().replace("x", ",").split(",") if t)
    except ValueError:
        dims = ()
    if not dims or min(dims) < 1:
        raise ValueError(text)
    return dims


shape.__name__ = "shape C,H,W"


def input_file(text: str) -> str:
    """An argparse type: a file that exists (a checkpoint, a curve, a directions file), checked
    while the arguments are parsed, before torch is imported."""
    if not text:
        raise argparse.ArgumentTypeError("the file name is empty")
    if os.path.isdir(text):
        raise argparse.ArgumentTypeError(f"{text!r} is a folder, not a file")
    if not os.path.isfile(text):
        raise argparse.ArgumentTypeError(f"{text!r} does not exist")
    return text


def _writable_folder(path: str, above: str) -> None:
    """Refuse the output ``path`` when the nearest of ``above`` and its parents that exists is not
    a folder or cannot be written (folders missing below it are the command's to make or refuse)."""
    above = os.path.abspath(above)
    while not os.path.exists(above) and os.path.dirname(above) != above:
        above = os.path.dirname(above)
    if not os.path.isdir(above):
        raise argparse.ArgumentTypeError(f"cannot write {path!r}: {above!r} is a file, not a folder")
    try:
        check_folder(os.path.join(above, "_"))
    except LandscapeError as exc:
        raise argparse.ArgumentTypeError(f"cannot write {path!r}: {exc}") from None


def output_file(text: str) -> str:
    """An argparse type: a file that can be written: not a folder, inside folders that can be
    written (not whether it exists: whether a command replaces or resumes it is its own rule)."""
    if not text:
        raise argparse.ArgumentTypeError("the output file name is empty")
    if os.path.isdir(text):
        raise argparse.ArgumentTypeError(f"{text!r} is a folder")
    _writable_folder(text, os.path.dirname(os.path.abspath(text)))
    return text


def output_folder(text: str) -> str:
    """An argparse type: a folder of outputs (made when the command writes), not a file, inside
    folders that can be written."""
    if not text:
        raise argparse.ArgumentTypeError("the output folder name is empty")
    if os.path.exists(text) and not os.path.isdir(text):
        raise argparse.ArgumentTypeError(f"{text!r} is a file, not a folder")
    _writable_folder(text, text)
    return text


def add_model_options(p: argparse.ArgumentParser, arch_required: bool = False, in_channels: bool = False,
                      group: argparse._ArgumentGroup | None = None):
    """The network's options, as every command that builds one spells them: ``--arch``,
    ``--num-classes``, ``--unsafe-pickle`` (and ``--in-channels``); its checkpoints are the
    command's own."""
    g = group or p.add_argument_group("model")
    g.add_argument("--arch", required=arch_required,
                   help="the architecture: a zoo name (resnet20, vgg9, digits_cnn, ...; landscape-train --list-archs), "
                   "package.module:callable returning an nn.Module (modules in the current folder are found), or "
                   "hf:DIR, the Hugging Face model of DIR/config.json (offline; pip install 'torch-landscape[hf]')")
    g.add_argument("--num-classes", type=positive, default=None,
                   help="the network's classes (default: the data's, else what the checkpoint records, else 10)")
    if in_channels:
        g.add_argument("--in-channels", type=positive, default=None,
                       help="the network's input channels (default: the data's, else what the checkpoint records, "
                       "else 3)")
    g.add_argument("--unsafe-pickle", action="store_true",
                   help="allow checkpoints holding pickled Python objects (a whole nn.Module): unpickling runs "
                   "arbitrary code from the file, so only for files you trust")
    return g


def add_run_options(p: argparse.ArgumentParser, device: str | None = "cpu", batch_size: str | None = None,
                    progress: bool = True, overwrite: bool = True, group: argparse._ArgumentGroup | None = None):
    """How a command runs, as every computing command spells it, one help text each: ``--device``
    (default ``device``; None: no such option), ``--threads``, ``--batch-size`` (what its default
    is, ``batch_size``; None: no such option), ``--overwrite`` and ``--no-progress``."""
    g = group or p.add_argument_group("run")
    if device is not None:
        g.add_argument("--device", default=device,
                       help=f"where it runs: cpu, cuda, cuda:N, mps, or auto (a GPU when there is one) "
                       f"(default {device})")
    g.add_argument("--threads", type=positive, default=None,
                   help="torch threads per process (default: OMP_NUM_THREADS, else the idle cores shared by the "
                   "MPI ranks of a node)")
    if batch_size is not None:
        g.add_argument("--batch-size", type=positive, default=None, help=f"samples per batch (default {batch_size})")
    if overwrite:
        g.add_argument("--overwrite", action="store_true",
                       help="replace an existing --out instead of refusing it (or resuming it)")
    if progress:
        g.add_argument("--no-progress", dest="progress", action="store_false",
                       help="no progress (a bar on a terminal, a line every 10 s in a log) and no estimate of a long "
                       "run's time")
    return g


def add_data_options(p: argparse.ArgumentParser, split: str = "train", several: bool = False):
    """The options of :class:`landscape.data.datasets.DataSpec`, as every command that loads data spells them."""
    d, splits = declared("landscape.data.datasets", "DataSpec"), declared("landscape.data.datasets", "SPLITS")
    g = p.add_argument_group("data")
    g.add_argument("--dataset", default=d.dataset,
                   help=f"digits, synthetic, cifar10, cifar100, mnist, tokens:FILE or package.module:callable "
                   f"(default {d.dataset})")
    g.add_argument("--data-root", help="folder with cifar-10-batches-py, cifar-100-python or the MNIST IDX files")
    if several:
        g.add_argument("--split", default=split, metavar="|".join(splits) + "|train,test",
                       help=f"the split(s) to evaluate; train,test writes train_loss, train_acc, test_loss and "
                       f"test_acc into one file (default {split})")
    else:
        g.add_argument("--split", choices=splits, default=split)
    g.add_argument("--samples", type=positive, default=None, metavar="N",
                   help="evaluate a fixed random subset of N samples (its indices are recorded; data of N samples or "
                   "fewer is taken whole, with a warning)")
    g.add_argument("--sample-seed", type=non_negative, default=d.sample_seed)
    g.add_argument("--synthetic-shape", type=shape, default=d.synthetic_shape, metavar="C,H,W",
                   help="input shape of --dataset synthetic (default 3,32,32)")
    g.add_argument("--synthetic-size", type=positive, default=d.synthetic_size,
                   help=f"samples of --dataset synthetic (default {d.synthetic_size})")
    g.add_argument("--synthetic-seed", type=non_negative, default=d.synthetic_seed,
                   help="seed of --dataset synthetic: the --seed the network was trained with")
    g.add_argument("--seq-len", type=positive, default=None, metavar="N",
                   help="with --dataset tokens:FILE (.npy of token ids, or .bin of uint16 ids): tokens per sequence "
                   "(refused with other data)")
    g.add_argument("--raw-data", action="store_true",
                   help="no per-channel normalization (for networks trained with --raw-data)")
    return g


_NEGATIVE = re.compile(r"-(\d|\.\d|inf|nan)", re.IGNORECASE)


def join_negative_values(argv: Sequence[str], options: Sequence[str] = GRID_OPTIONS) -> list[str]:
    """Turn ``--x -1:1:51`` into ``--x=-1:1:51`` so argparse does not read ``-1:1:51`` as an option
    (for each of ``options`` followed by a value that starts with '-' and a number)."""
    out: list[str] = []
    i = 0
    while i < len(argv):
        token = argv[i]
        if token == "--":
            return out + list(argv[i:])
        if token in options and i + 1 < len(argv) and _NEGATIVE.match(argv[i + 1]):
            out.append(f"{token}={argv[i + 1]}")
            i += 2
            continue
        out.append(token)
        i += 1
    return out


def as_flags(message: str) -> str:
    """Library messages name parameters in backquotes (```batch_size``` must be positive); a command
    names them as its flags (``--batch-size``)."""
    return re.sub(r"`([a-z][a-z0-9_]*)`", lambda m: "--" + m.group(1).replace("_", "-"), message)


def say(line: str) -> None:
    """One whole line on stderr in one write, so lines of several MPI ranks never interleave."""
    sys.stderr.write(line + "\n")
    sys.stderr.flush()


# What torch's allocators say when an allocation fails (a RuntimeError, not a MemoryError): the
# CPU allocator on Linux and Windows, CUDA's and MPS's.
ALLOCATION_FAILED = ("can't allocate memory", "not enough memory", "out of memory")


def out_of_memory(exc: BaseException) -> bool:
    """Whether ``exc`` is a failed allocation: Python's MemoryError or torch's allocator errors."""
    return isinstance(exc, MemoryError) or (isinstance(exc, RuntimeError)
                                            and any(m in str(exc) for m in ALLOCATION_FAILED))


def run_cli(prog: str, body: Callable[[], int], hints: Mapping[str, str] | None = None) -> int:
    """Run ``body``; a :class:`LandscapeError` becomes one stderr line (multi-line messages folded)
    and exit code 2, Ctrl-C ``interrupted`` and exit code 130. ``hints`` maps the name of an error
    class (``DamagedFile``, ``ConfigMismatch``) to what the user can do about it with this command,
    in its flags; it is added to the message.

    Under MPI every rank joins the job first (:func:`landscape.runtime.parallel.join`) and meets the
    same bad input; only rank 0 reports it; Ctrl-C ends the whole job with one line and exit code
    130, whatever the moment. A warning is one line too (``PROG: warning: ...``), not Python's two
    lines naming a source file.
    """
    try:
        join(prog)  # from now on Ctrl-C is a KeyboardInterrupt
        with warnings.catch_warnings():
            warnings.showwarning = lambda message, *_, **__: (  # once: rank 0's, as errors
                say(f"{prog}: warning: {as_flags(one_line(message))}") if launcher_rank() == 0 else None)
            code = body()
        if program().startswith("landscape-"):  # the work is done and said: a Ctrl-C now must not kill the exit
            hold_interrupts()
        return code
    except LandscapeError as exc:
        if launcher_rank() == 0:
            hint = {**HINTS, **(hints or {})}.get(type(exc).__name__)
            say(f"{prog}: error: {as_flags(one_line(exc))}" + (f"; {hint}" if hint else ""))
        return 2
    except (MemoryError, RuntimeError) as exc:
        if not out_of_memory(exc):
            raise
        if launcher_rank() == 0:
            say(f"{prog}: error: out of memory: the grid, the data or the figure asked for is too large for "
                "this machine")
        return 2
    except SystemExit as exc:  # --help, --version
        return exc.code if isinstance(exc.code, int) else 0
    except KeyboardInterrupt:
        comm = joined()
        if comm is not None:
            end_interrupted(comm, prog)
        if program().startswith("landscape-"):  # a command ending: a second Ctrl-C must not interrupt its exit
            hold_interrupts()
        if launcher_rank() == 0:
            say(f"{prog}: interrupted")
        return 130
