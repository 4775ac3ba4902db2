"""Loss and accuracy of a network at its current parameters: the one evaluation loop.

:func:`evaluate` is the loop every caller shares (surfaces, training's test pass, pruning's
sensitivity): batch-size-weighted means accumulated in float64, so a value does not depend on the
batching. :class:`Evaluator` binds it to a model and data: built once per run (data moved to the
device once, batch size picked by a timing probe), then called once per grid point after
:class:`landscape.space.params.Mover` has moved the parameters in place. :class:`Evaluation` is the
same as a per-point metric of a surface: ``{split}_loss`` and ``{split}_acc``.
"""

from __future__ import annotations

import contextlib
import ctypes
import sys
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import replace

import torch
from torch import nn

from landscape.data.batches import Batches, TensorBatches, as_batches, forward, inputs_of
from landscape.errors import LandscapeError, first_line
from landscape.evaluation.losses import accuracy, function_name, logits_of, resolve_loss, token_labels
from landscape.evaluation.options import EvalOptions
from landscape.evaluation.tokens import check_token_ids
from landscape.runtime.cache import recall, remember
from landscape.runtime.device import resolve_device
from landscape.runtime.threads import using_threads
from landscape.space.params import place_, uses_channels_last

PROBE_BATCH_SIZES = (64, 128, 256, 512)
DEFAULT_BATCH_SIZE = 256


def keep_malloc_arenas() -> None:
    """Stop glibc from returning freed activations to the OS between batches.

    A fresh process otherwise runs the same forward pass up to 2x slower, paying page faults for
    every batch's activations (the effect of MALLOC_MMAP_THRESHOLD_/MALLOC_TRIM_THRESHOLD_).
    """
    if not sys.platform.startswith("linux"):
        return
    try:
        libc = ctypes.CDLL("libc.so.6")
        M_TRIM_THRESHOLD, M_MMAP_THRESHOLD = -1, -3
        libc.mallopt(M_MMAP_THRESHOLD, 1 << 30)
        libc.mallopt(M_TRIM_THRESHOLD, (1 << 31) - 1)
    except (OSError, AttributeError):
        pass




def autocast(device: torch.device, dtype: torch.dtype | None):
    """``torch.autocast`` for ``dtype`` on ``device``, or nothing when ``dtype`` is None."""
    return torch.autocast(device.type, dtype=dtype) if dtype is not None else contextlib.nullcontext()


def evaluate(
    model: nn.Module,
    batches: Iterable[tuple[object, int]],
    loss_fn: Callable,
    accuracy_fn: Callable | None = accuracy,
    forward_fn: Callable = forward,
    autocast_dtype: torch.dtype | None = None,
) -> dict[str, float]:
    """Mean loss (and accuracy in %, when ``accuracy_fn`` is given) over ``(batch, n)`` pairs.

    The model is called as it stands (set ``eval()`` first). Means are weighted by the batch sizes
    and summed in float64. Where the loss is NaN the accuracy is NaN too: argmax of NaN logits is
    class 0, an artefact rather than a result.
    """
    device = next((p.device for p in model.parameters()), torch.device("cpu"))
    total_loss = torch.zeros((), dtype=torch.float64, device=device)
    total_acc = torch.zeros((), dtype=torch.float64, device=device)
    n = 0
    with torch.inference_mode():
        for batch, size in batches:
            with autocast(device, autocast_dtype):
                out = forward_fn(model, batch)
            out = out.float() if torch.is_tensor(out) else out
            total_loss += loss_fn(out, batch).double() * size
            if accuracy_fn is not None:
                total_acc += torch.as_tensor(accuracy_fn(out, batch), device=device).double() * size
            n += size
    if n == 0:
        raise LandscapeError("the evaluation data is empty")
    loss = float(total_loss) / n
    values = {"loss": loss}
    if accuracy_fn is not None:
        values["acc"] = 100.0 * float(total_acc) / n if loss == loss else float("nan")
    return values


def cpu_has_bf16() -> bool:
    """Whether this CPU has native bf16 arithmetic (AVX512_BF16 or AMX), from /proc/cpuinfo."""
    try:
        with open("/proc/cpuinfo") as f:
            flags = next((line for line in f if line.startswith("flags")), "")
    except OSError:
        return False
    return any(flag in flags.split() for flag in ("avx512_bf16", "amx_bf16"))


class Evaluator:
    """Mean loss and accuracy (in %) of ``model`` on ``data``, as the parameters stand now.

    ``data``: anything :func:`landscape.data.batches.as_batches` takes. ``options``: an
    :class:`landscape.EvalOptions` (its loss, accuracy, batch size, device, precision, compile,
    threads and forward function; the BatchNorm options are the caller's). It runs at
    ``options.threads`` torch threads (None: torch's count as it stands), restoring the caller's
    count after each call; that count keys the batch-size probe's cache. ``batch_size=None``
    picks the fastest of a few sizes by timing them once (tensor data; a loader's batches are
    used as they come). Conv nets on 4-D inputs run channels-last (exact, faster on CPU) unless
    ``channels_last`` says otherwise. ``precision="bf16"`` autocasts the forward pass (opt-in: the
    loss moves), and is refused where a quick timing finds it slower than fp32 (CPUs without
    native bf16). ``compile=True`` uses torch.compile, timed: :attr:`compile_seconds` and
    :attr:`compile_saving` (seconds saved per evaluation) say when it repays; a compiled model that
    is not faster is refused. The model is moved to the device and put in eval mode.
    """

    def __init__(self, model: nn.Module, data, options: EvalOptions | None = None, *,
                 channels_last: bool | None = None):
        options = options if options is not None else EvalOptions()
        if not isinstance(options, EvalOptions):
            raise LandscapeError(f"`options` must be a landscape.EvalOptions, got {type(options).__name__}")
        self.options = options
        with using_threads(options.threads) as n_threads:
            self.threads = n_threads  # what the timings below ran at: it keys the probe's cache
            self._setup(model, data, channels_last)

    def _setup(self, model: nn.Module, data, channels_last: bool | None) -> None:
        options = self.options
        batch_size = options.batch_size
        keep_malloc_arenas()
        self.device = resolve_device(options.device)
        self.loss_name, self.loss_fn = resolve_loss(options.loss_fn)
        self.precision = options.precision
        self.forward_fn = options.forward_fn
        if channels_last is None:
            sample = data.x[:1] if hasattr(data, "x") else (data[0][:1] if isinstance(data, tuple | list)
                                                              and data and torch.is_tensor(data[0]) else None)
            channels_last = uses_channels_last(model, sample)
        self.channels_last = bool(channels_last)
        self.model = place_(model, self.device, self.channels_last)
        model.eval()
        self.batches: Batches = as_batches(data, self.device, batch_size or DEFAULT_BATCH_SIZE, self.channels_last)
        self.n = self.batches.n
        self.accuracy_fn = self._resolve_accuracy(options.accuracy_fn)
        self.accuracy_name = "" if self.accuracy_fn is None else function_name(self.accuracy_fn)
        self._check_fits()
        self.forward_model = model
        self.bf16_speedup: float | None = None
        self.compile_seconds: float | None = None
        self.compile_saving: float | None = None  # seconds saved per evaluation once compiled
        if self.precision == "bf16":
            self._check_bf16()
        if isinstance(self.batches, TensorBatches):
            self.batches = self.batches.with_batch_size(batch_size or self.probe_batch_size())
        self.batch_size = getattr(self.batches, "batch_size", None)
        if options.compile:
            self._compile()

    def _resolve_accuracy(self, accuracy_fn):
        if accuracy_fn != "auto":
            return accuracy_fn
        try:
            y = token_labels(self.batches.first())
        except LandscapeError:
            return None
        return accuracy if torch.is_tensor(y) and not y.is_floating_point() else None

    @property
    def autocast_dtype(self) -> torch.dtype | None:
        return torch.bfloat16 if self.precision == "bf16" else None

    def _check_fits(self) -> None:
        """One forward pass on two samples: a model that does not take this data is a user error."""
        batch = self.batches.first(2)
        ids = inputs_of(self.batches.first(self.n) if isinstance(self.batches, TensorBatches) else batch)
        check_token_ids(ids.get("input_ids") if isinstance(ids, Mapping) else ids, self.model)
        try:
            with torch.inference_mode():
                out = self.forward_fn(self.model, batch)
        except (RuntimeError, ValueError, IndexError, TypeError) as exc:
            x = inputs_of(batch)
            shape = f" of shape {tuple(x.shape[1:])}" if torch.is_tensor(x) else ""
            raise LandscapeError(f"the model does not accept the inputs{shape} ({first_line(exc)})") from None
        if self.accuracy_fn is accuracy:  # every label of in-memory data, else the first batch's
            y = token_labels(self.batches.first(self.n) if isinstance(self.batches, TensorBatches) else batch)
            logits = logits_of(out)
            sequence = logits.dim() == 3 and y.dim() == 2  # a language model: the vocabulary is the last axis
            if not (logits.dim() == 2 or sequence) or logits.shape[-1] < int(y.max()) + 1:
                raise LandscapeError(f"the model outputs shape {tuple(logits.shape[1:])} but the labels go up "
                                     f"to {int(y.max())}")
        try:
            with torch.inference_mode():
                self.loss_fn(out.float() if torch.is_tensor(out) else out, batch)
        except LandscapeError:
            raise
        except (RuntimeError, ValueError, IndexError, TypeError, KeyError) as exc:
            raise LandscapeError(f"the loss function fails on the data ({first_line(exc)})") from None

    def _time(self, batch, autocast_dtype, model=None, rounds: int = 2) -> float:
        """Best of ``rounds`` timed forward passes (and losses) on ``batch``."""
        best = float("inf")
        for _ in range(rounds):
            self._sync()
            t0 = time.perf_counter()
            evaluate(model if model is not None else self.model, [(batch, 1)], self.loss_fn, None, self.forward_fn,
                     autocast_dtype)
            self._sync()
            best = min(best, time.perf_counter() - t0)
        return best

    def _check_bf16(self) -> None:
        """bf16 only where it is faster: the GPU's support, or a quick timing on this CPU."""
        if self.device.type == "cuda":
            if not torch.cuda.is_bf16_supported():
                raise LandscapeError("this GPU has no bf16 support; use fp32")
            return
        batch = self.batches.first(min(self.n, 256))
        self._time(batch, None, rounds=1)
        self._time(batch, torch.bfloat16, rounds=1)  # warm-up of both kernels
        fp32, bf16 = self._time(batch, None), self._time(batch, torch.bfloat16)
        if bf16 >= fp32:
            native = cpu_has_bf16()
            why = ("it has native bf16 instructions, but this network does not profit" if native else
                   "it has no native bf16 instructions (AVX512_BF16 or AMX)")
            raise LandscapeError(f"bf16 is not faster than fp32 on this CPU ({bf16 * 1e3:.3g} ms vs "
                                 f"{fp32 * 1e3:.3g} ms per batch: {why}); use fp32")
        self.bf16_speedup = fp32 / bf16

    def _compile(self) -> None:
        """torch.compile, timed: what compiling cost and what it saves per evaluation. A compiled
        model that is not faster is refused (it only costs the compile time)."""
        batch = self.batches.first(min(self.n, self.batch_size or DEFAULT_BATCH_SIZE))
        eager = self._time(batch, self.autocast_dtype)
        compiled = torch.compile(self.model)
        t0 = time.perf_counter()
        try:
            self._time(batch, self.autocast_dtype, compiled, rounds=1)
        except Exception as exc:  # noqa: BLE001 - inductor needs a C++ compiler and more; report why
            raise LandscapeError(f"torch.compile failed on this model ({first_line(exc)}); drop compile") from None
        self.compile_seconds = time.perf_counter() - t0
        fast = self._time(batch, self.autocast_dtype, compiled)
        if fast >= eager:
            raise LandscapeError(f"torch.compile does not make this model faster here ({fast * 1e3:.3g} ms vs "
                                 f"{eager * 1e3:.3g} ms per batch, after {self.compile_seconds:.1f} s of "
                                 "compiling); drop compile")
        batches = -(-self.n // (self.batch_size or len(inputs_of(batch))))
        self.compile_saving = (eager - fast) * batches
        self.forward_model = compiled

    def _pass(self, batches) -> dict[str, float]:
        return evaluate(self.forward_model, batches, self.loss_fn, self.accuracy_fn, self.forward_fn,
                        self.autocast_dtype)

    def probe_batch_size(self, candidates: Sequence[int] = PROBE_BATCH_SIZES, rounds: int = 3,
                         budget: float = 3.0) -> int:
        """The candidate with the least time per sample, timed on one batch of each.

        Candidates are timed in interleaved rounds and each keeps its best round, so a burst of
        load from another process does not decide the choice; the rounds stop within ``budget``
        evaluations of the data (the probe costs at most a few grid points). The choice is
        remembered in the cache folder (:func:`landscape.runtime.cache.cache_dir`) per model, input shape,
        device, threads and precision: a later run of the same kind skips the probe.
        """
        tb = self.batches
        assert isinstance(tb, TensorBatches)
        sizes = sorted({min(b, self.n) for b in candidates})
        if len(sizes) == 1:
            return sizes[0]
        key = self._probe_key(sizes)
        known = recall("batch_size", key)
        if isinstance(known, int) and known in sizes:
            return known
        rounds = max(1, min(rounds, int((budget * self.n - sizes[-1]) // sum(sizes))))
        best_rate = dict.fromkeys(sizes, float("inf"))
        self._pass([(tb.slice(0, sizes[-1]), sizes[-1])])  # warm-up: allocator and kernels
        for _ in range(rounds):
            for b in sizes:
                self._sync()
                t0 = time.perf_counter()
                self._pass([(tb.slice(0, b), b)])
                self._sync()
                best_rate[b] = min(best_rate[b], (time.perf_counter() - t0) / b)
        choice = min(sizes, key=best_rate.__getitem__)
        remember("batch_size", key, choice)
        return choice

    def _probe_key(self, sizes: Sequence[int]) -> dict:
        """What the fastest batch size depends on: the network (its class and tensor shapes), one
        sample's shape, the device, the threads, the precision, the machine and torch's version."""
        import hashlib
        import platform

        shapes = [(k, tuple(v.shape), str(v.dtype)) for k, v in self.model.state_dict().items()]
        x = inputs_of(self.batches.first(1))
        sample = tuple(x.shape[1:]) if torch.is_tensor(x) else str(type(x))
        return {
            "model": f"{type(self.model).__module__}.{type(self.model).__qualname__}",
            "tensors": hashlib.sha256(repr(shapes).encode()).hexdigest(),
            "sample": sample, "dtype": str(getattr(x, "dtype", "")), "sizes": list(sizes),
            "device": str(self.device), "threads": self.threads, "precision": self.precision,
            "channels_last": self.channels_last, "forward": function_name(self.forward_fn),
            "loss": self.loss_name, "host": platform.node(), "torch": torch.__version__,
        }

    def _sync(self) -> None:
        if self.device.type == "cuda":
            torch.cuda.synchronize(self.device)

    def __call__(self) -> dict[str, float]:
        """``{"loss": mean loss, "acc": accuracy in %}`` at the model's current parameters
        (no ``"acc"`` when there is no accuracy)."""
        with using_threads(self.options.threads):
            return self._pass(self.batches)


class Evaluation:
    """Loss and accuracy over one split as a per-point metric: ``{split}_loss``, ``{split}_acc``.

    ``data`` and ``options`` are those of :class:`Evaluator`, which :meth:`setup` builds on the
    run's device (the batch size then set, e.g. to the one recorded in a file being resumed).
    """

    def __init__(self, data, split: str = "train", options: EvalOptions | None = None, *,
                 channels_last: bool | None = None):
        self.data, self.split = data, split
        self.options = options if options is not None else EvalOptions()
        self.loss_name, self.loss_fn = resolve_loss(self.options.loss_fn)
        self.channels_last = channels_last
        self.evaluator: Evaluator | None = None
        self.names: tuple[str, ...] = (f"{split}_loss", f"{split}_acc")

    @property
    def batch_size(self) -> int | None:
        return self.options.batch_size

    @property
    def precision(self) -> str:
        return self.options.precision

    @property
    def compile(self) -> bool:
        return self.options.compile

    def setup(self, context) -> None:
        self.options = replace(self.options, device=context.device)
        self.evaluator = Evaluator(context.model, self.data, self.options, channels_last=self.channels_last)
        self.options = replace(self.options, batch_size=self.evaluator.batch_size)
        if self.evaluator.accuracy_fn is None:
            self.names = (f"{self.split}_loss",)

    @property
    def batches(self) -> Batches:
        if self.evaluator is None:
            raise RuntimeError("Evaluation.setup has not run")
        return self.evaluator.batches

    def __call__(self, model: nn.Module) -> dict[str, float]:
        values = self.evaluator()
        return {f"{self.split}_{k}": v for k, v in values.items()}

    def config(self) -> dict:
        ev = self.evaluator
        return {
            "split": self.split, "loss": self.loss_name, "precision": self.precision,
            "accuracy": ev.accuracy_name if ev is not None else "",
            "data": ev.batches.fingerprint() if ev is not None else "", "samples": ev.n if ev is not None else 0,
        }


__all__ = ["Evaluation", "Evaluator", "evaluate", "keep_malloc_arenas"]
