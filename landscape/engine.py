"""Computing a surface: ``landscape.surface(model, data, grid, directions=..., evaluation=..., output=...)``.

model + data -> directions -> grid -> metrics at every point (the model moved in place by a
:class:`landscape.params.Mover`) -> :func:`landscape.parallel.map_points` (MPI when launched by
``mpirun``, else serial) -> the surface file, written by rank 0 alone. The options come in three
frozen objects that check themselves when built: :class:`Directions`, :class:`EvalOptions` and
:class:`Output` (the grid is a :class:`landscape.grid.Grid`).

Every rank runs the same call: it builds the model, data and directions itself (random
directions come from the seed, checked by checksum across ranks), rank 0 alone probes the batch
size, opens the file and hands out the points. Resuming is checked by construction: everything
the values depend on (grid coordinates, the model's tensors, the data's checksum, directions,
each metric's configuration) is collected into the file's ``inputs`` and compared on resume.
"""

from __future__ import annotations

import hashlib
import json
import os
import sys
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, fields

import numpy as np
import torch
from torch import nn

from landscape.batches import forward, tensor_bytes
from landscape.batchnorm import BatchNormRecompute, has_batchnorm
from landscape.directions import directions_checksum, random_directions, save_directions
from landscape.errors import GridTooLarge, LandscapeError
from landscape.evaluate import Evaluation, resolve_device
from landscape.files import OutputLock, check_output, remove_stale_temporaries
from landscape.grid import Axis, Grid, as_grid
from landscape.metrics import Context, Point, as_metric, check_names, config_of, values_of
from landscape.parallel import collective, local_rank_and_size, map_points, on_root, same_everywhere, share, world
from landscape.params import DIR_TYPES, LazyDirection, Mover, live_tensors, place_, snapshot, uses_channels_last
from landscape.provenance import environment, now
from landscape.surface_file import (
    ConfigMismatch,
    DamagedFile,
    Surface,
    new_surface,
    peek_attrs,
    read_surface,
    repair_surface,
    write_surface,
)
from landscape.threads import threads as using_threads

MAX_POINTS = 1_000_000
# What is refreshed on resume rather than checked: it says how this run went, not what it computed.
CONTEXT_KEYS = ("command", "batch_size", "mpi_ranks", "device", "hostname", "threads_per_rank", "compile",
                "torch_version", "landscape_version", "numpy_version", "h5py_version", "python_version")


def _is_int(value) -> bool:
    return isinstance(value, int | np.integer) and not isinstance(value, bool)


def _choice(name: str, value, choices: Sequence[str]) -> None:
    if value not in choices:
        raise LandscapeError(f"`{name}` must be one of {', '.join(choices)}, got {value!r}")


def _per_axis(name: str, value, choices: Sequence[str]) -> str | tuple[str, ...]:
    """One setting for every axis (a string) or one per axis (a sequence of strings)."""
    values = [value] if isinstance(value, str) else list(value) if isinstance(value, Sequence) else [value]
    if not values:
        raise LandscapeError(f"`{name}` is empty: give one of {', '.join(choices)}, or one per axis")
    for v in values:
        _choice(name, v, choices)
    return value if isinstance(value, str) else tuple(values)


@dataclass(frozen=True)
class Directions:
    """The directions of a surface: your own ``tensors`` (one dict of tensors named like the
    model's per axis), else random ones drawn from ``seed`` and normalized by ``norm`` with the
    ``ignore`` rule (one for all axes, or one per axis) under ``semantics``. ``dir_type``: over the
    parameters ("weights") or the whole state dict, BatchNorm statistics included ("states").
    Random directions are regenerated tensor by tensor at every point (the same values; a surface
    then holds the origin and one tensor beyond the model); ``hold=True`` keeps them whole instead
    (two more copies of the model's size, for when memory is plentiful and points are cheap)."""

    tensors: Sequence[Mapping[str, torch.Tensor]] | None = None
    dir_type: str = "weights"
    norm: str | Sequence[str] = "filter"
    ignore: str | Sequence[str] = "biasbn"
    seed: int = 0
    semantics: str = "landscape"
    hold: bool = False

    def __post_init__(self):
        from landscape.directions import NORMS, SEMANTICS
        from landscape.params import IGNORES

        _choice("dir_type", self.dir_type, DIR_TYPES)
        object.__setattr__(self, "norm", _per_axis("norm", self.norm, NORMS))
        object.__setattr__(self, "ignore", _per_axis("ignore", self.ignore, IGNORES))
        _choice("semantics", self.semantics, SEMANTICS)
        if not _is_int(self.seed) or not 0 <= self.seed < 2**63:
            raise LandscapeError(f"`seed` must be a non-negative integer below 2**63, got {self.seed!r}")
        if not isinstance(self.hold, bool):
            raise LandscapeError(f"`hold` must be True or False, got {self.hold!r}")
        if self.tensors is not None:
            if isinstance(self.tensors, Mapping) or not isinstance(self.tensors, Sequence) or \
                    not all(isinstance(d, Mapping) for d in self.tensors):
                raise LandscapeError("`tensors` must be a list of directions, each a dict of tensors named like "
                                     "the model's")
            object.__setattr__(self, "tensors", tuple(self.tensors))


@dataclass(frozen=True)
class EvalOptions:
    """How each point is evaluated. ``loss_fn(output, batch) -> mean loss`` or "crossentropy",
    "mse" (None: crossentropy); ``accuracy_fn`` likewise ("auto": argmax accuracy for class labels;
    None: no accuracy). ``batch_size`` None: the fastest of a quick probe. ``device`` None or
    "auto": CUDA when available. ``precision`` "bf16": autocast. ``compile``: torch.compile the
    model. ``threads`` None: the idle cores shared by the ranks of a node. ``bn_recompute``:
    re-estimate BatchNorm statistics from that many batches of ``bn_data`` (None: the data) at every
    point. ``forward_fn(model, batch) -> output`` for models that take more than the inputs."""

    loss_fn: str | Callable | None = None
    accuracy_fn: str | Callable | None = "auto"
    batch_size: int | None = None
    device: str | torch.device | None = None
    precision: str = "fp32"
    compile: bool = False
    threads: int | None = None
    bn_recompute: int = 0
    bn_data: object = None
    forward_fn: Callable = forward

    def __post_init__(self):
        from landscape.evaluate import PRECISIONS
        from landscape.losses import LOSSES

        if isinstance(self.loss_fn, str):
            _choice("loss_fn", self.loss_fn, tuple(LOSSES))
        elif self.loss_fn is not None and not callable(self.loss_fn):
            raise LandscapeError(f"`loss_fn` must be a name or a function loss_fn(output, batch), got {self.loss_fn!r}")
        if not (self.accuracy_fn in (None, "auto") or callable(self.accuracy_fn)):
            raise LandscapeError(f"`accuracy_fn` must be a function, 'auto' or None, got {self.accuracy_fn!r}")
        if self.batch_size is not None and (not _is_int(self.batch_size) or self.batch_size < 1):
            raise LandscapeError(f"`batch_size` must be a positive integer or None, got {self.batch_size!r}")
        resolve_device(self.device)  # one line naming the device when it is not one, or not here
        _choice("precision", self.precision, PRECISIONS)
        if not isinstance(self.compile, bool):
            raise LandscapeError(f"`compile` must be True or False, got {self.compile!r}")
        if self.threads is not None and (not _is_int(self.threads) or self.threads < 1):
            raise LandscapeError(f"`threads` must be a positive integer or None, got {self.threads!r}")
        if not _is_int(self.bn_recompute) or self.bn_recompute < 0:
            raise LandscapeError(f"`bn_recompute` must be a non-negative number of batches, got {self.bn_recompute!r}")
        if not callable(self.forward_fn):
            raise LandscapeError(f"`forward_fn` must be a function forward_fn(model, batch), got {self.forward_fn!r}")


@dataclass(frozen=True)
class Output:
    """Where the surface goes and how the run writes it. ``path``: the surface file (None: none;
    resumed when it exists and matches; a damaged one is refused, or with ``repair`` its verified
    points are kept; ``overwrite`` replaces one of another configuration). ``chunk_size``: points
    per work unit under MPI; ``flush_seconds``: how often the file is written; ``max_points``: a
    larger grid is refused with its estimated time (None: no limit). ``provenance``: attributes
    recorded in the file. ``directions_file``: where the directions are written (None:
    ``PATH.dirs.h5``; "": not written, e.g. when they came from a file named in ``provenance``).
    ``arrays``: arrays stored with the surface (e.g. ``sample_indices``)."""

    path: str | os.PathLike | None = None
    overwrite: bool = False
    repair: bool = False
    chunk_size: int = 1
    flush_seconds: float = 2.0
    max_points: int | None = MAX_POINTS
    progress: bool = True
    provenance: Mapping | None = None
    directions_file: str | None = None
    arrays: Mapping[str, np.ndarray] | None = None

    def __post_init__(self):
        if self.path is not None:
            if not isinstance(self.path, str | os.PathLike):
                raise LandscapeError(f"`path` must be a file name, got {self.path!r}")
            object.__setattr__(self, "path", os.fspath(self.path))
            if self.path == "":
                raise LandscapeError("the output file name is empty (`path`)")
        for name in ("overwrite", "repair", "progress"):
            if not isinstance(getattr(self, name), bool):
                raise LandscapeError(f"`{name}` must be True or False, got {getattr(self, name)!r}")
        if not _is_int(self.chunk_size) or self.chunk_size < 1:
            raise LandscapeError(f"`chunk_size` must be a positive integer, got {self.chunk_size!r}")
        if not isinstance(self.flush_seconds, int | float) or not 0 <= self.flush_seconds < float("inf"):
            raise LandscapeError(f"`flush_seconds` must be a non-negative number, got {self.flush_seconds!r}")
        if self.max_points is not None and (not _is_int(self.max_points) or self.max_points < 1):
            raise LandscapeError(f"`max_points` must be a positive integer or None, got {self.max_points!r}")
        for name in ("provenance", "arrays"):
            if getattr(self, name) is not None and not isinstance(getattr(self, name), Mapping):
                raise LandscapeError(f"`{name}` must be a dict, got {type(getattr(self, name)).__name__}")
        if self.directions_file is not None and not isinstance(self.directions_file, str):
            raise LandscapeError(f"`directions_file` must be a file name, \"\" or None, got {self.directions_file!r}")


def directions_path(out: str) -> str:
    """Where a surface's own directions go: ``surface.h5`` -> ``surface.dirs.h5``."""
    root, ext = os.path.splitext(out)
    return f"{root}.dirs{ext or '.h5'}"


def tensors_checksum(tensors: Mapping[str, torch.Tensor]) -> str:
    """SHA-256 of named tensors' names, dtypes, shapes and bytes: the identity of a model's point."""
    h = hashlib.sha256()
    for name, t in tensors.items():
        h.update(f"{name}|{t.dtype}|{tuple(t.shape)}|".encode())
        h.update(tensor_bytes(t))
    return h.hexdigest()


def by_split(data) -> dict[str, object]:
    """``data`` as ``{split: data}``: a mapping of splits as it is, anything else is ``train``."""
    if isinstance(data, Mapping) and data and all(isinstance(k, str) for k in data) and \
            not any(torch.is_tensor(v) for v in data.values()):
        return dict(data)
    return {"train": data}


def _check_directions(directions, ndim: int, origin: Mapping[str, torch.Tensor]) -> list[dict]:
    dirs = list(directions)
    if len(dirs) != ndim:
        raise LandscapeError(f"a {ndim}D grid needs {ndim} directions, got {len(dirs)}")
    out = []
    for d in dirs:
        if not isinstance(d, Mapping):
            raise LandscapeError("a direction is a dict of tensors named like the model's")
        if isinstance(d, LazyDirection):  # made tensor by tensor when read: kept as it is
            out.append(d)
        else:
            out.append({k: torch.as_tensor(d[k]).detach().cpu().float() if k in d else torch.zeros(v.shape)
                        for k, v in origin.items()})
        unknown = [k for k in d if k not in origin]
        if unknown:
            raise LandscapeError(f"a direction names tensors the model does not have: {', '.join(unknown[:3])}")
    return out


def _metrics(metrics) -> list:
    if metrics is None:
        return []
    if isinstance(metrics, Mapping):
        return [as_metric(name, m) for name, m in metrics.items()]
    return [as_metric(getattr(m, "__name__", type(m).__name__), m) for m in metrics]


def _python_command(grid: Grid, options: Sequence) -> str:
    """The call as a line for the file's provenance: non-default options shown, objects by type."""
    def value(v) -> str:
        if isinstance(v, str | int | float | bool | type(None)):
            return repr(v)
        if isinstance(v, tuple) and all(isinstance(t, str) for t in v):
            return repr(v)
        return f"<{type(v).__name__}>"

    adaptive = f", adaptive={grid.adaptive:g}" if grid.adaptive else ""
    shown = [f"Grid({', '.join(f'{a}={str(ax)!r}' for a, ax in zip('xyz', grid.axes, strict=False))}{adaptive})"]
    def is_default(v, default) -> bool:
        return v is default or (isinstance(v, str | int | float | bool | tuple) and v == default)

    for name, obj in options:
        changed = [f"{f.name}={value(getattr(obj, f.name))}" for f in fields(obj)
                   if not is_default(getattr(obj, f.name), f.default)]
        if changed:
            shown.append(f"{name}={type(obj).__name__}({', '.join(changed)})")
    return "python API: landscape.surface(model, data, " + ", ".join(shown) + ")"


WHAT = {"directions": "the directions differ (another seed, normalization, or directions file)",
        "model": "the model differs (other weights or another class)",
        "coordinates": "the grid's coordinates differ", "grid": "the grid differs",
        "dir_type": "the direction type differs", "bn_recompute": "the BatchNorm recomputation differs"}


def _mismatch(old: Mapping, new: Mapping) -> str | None:
    """A sentence naming the first input that differs between a file and this run, or None."""
    old_core = {k: v for k, v in old.items() if k != "metrics"}
    new_core = {k: v for k, v in new.items() if k != "metrics"}
    for key in ("grid", "coordinates", "dir_type", "model", "directions", "bn_recompute"):
        if old_core.get(key) != new_core.get(key):
            a, b = old_core.get(key), new_core.get(key)
            shown = f": {a!r} in the file, {b!r} now" if key in ("grid", "dir_type", "bn_recompute") else ""
            return WHAT[key] + shown
    for key in sorted(set(old_core) | set(new_core)):
        if old_core.get(key) != new_core.get(key):
            a, b = old_core.get(key), new_core.get(key)
            if isinstance(a, Mapping) and isinstance(b, Mapping):
                sub = next((k for k in sorted(set(a) | set(b)) if a.get(k) != b.get(k)), "")
                return f"{key} {sub}: {a.get(sub)!r} in the file, {b.get(sub)!r} now"
            return f"{key}: {a!r} in the file, {b!r} now"
    old_m = old.get("metrics", {})
    for name, cfg in new.get("metrics", {}).items():
        if name in old_m and old_m[name] != cfg:
            sub = next((k for k in sorted(set(old_m[name]) | set(cfg)) if old_m[name].get(k) != cfg.get(k)), "")
            what = {"data": "the data differ (checksum)", "samples": "the number of samples differs"}.get(sub)
            return (f"{name}: {what}" if what else
                    f"{name} was computed with {sub} {old_m[name].get(sub)!r}, now {cfg.get(sub)!r}")
    return None


def surface(
    model: nn.Module,
    data,
    grid: Grid | Axis | str | tuple,
    *,
    directions: Directions | Sequence[Mapping[str, torch.Tensor]] | None = None,
    metrics: Mapping | Sequence | None = None,
    evaluation: EvalOptions | None = None,
    output: Output | None = None,
    comm=None,
) -> Surface:
    """The loss surface of ``model`` around its current parameters.

    ``data``: a :class:`landscape.Dataset`, ``(X, y)`` tensors, a torch ``Dataset``, a
    ``DataLoader`` (any re-iterable of batches: tensors, tuples or dicts), or a mapping
    ``{split: data}`` to evaluate several splits (``train_loss``, ``test_loss``, ...). In-memory
    data is held on the device once; a loader too big for memory is streamed. Means are weighted
    by batch size.
    ``grid``: a :class:`landscape.grid.Grid` (``Grid(x=(-1, 1, 41), y="-1:1:41")``), or one axis
    for a 1D surface. ``directions``: :class:`Directions` (default: random, filter-normalized,
    biases and BatchNorm ignored), or your own as a list of dicts of tensors named like ``model``'s.
    ``metrics``: extra quantities at every point, ``{name: fn(model) -> float}`` or metric objects
    (see :mod:`landscape.metrics`). ``evaluation``: :class:`EvalOptions` (loss, accuracy, batch
    size, device, precision, ...). ``output``: :class:`Output` (the file, resume, provenance, ...);
    default: no file. Under ``mpirun`` every rank calls this and every rank gets the result.

    ``model`` is used in place (moved to the device) and put back at its origin, on its device and
    in its mode afterwards, also when the call raises. The thread count is restored too.
    """
    grid = as_grid(grid)
    if directions is None:
        directions = Directions()
    elif not isinstance(directions, Directions):
        directions = Directions(tensors=directions)
    evaluation = evaluation if evaluation is not None else EvalOptions()
    output = output if output is not None else Output()
    for name, value, kind in (("evaluation", evaluation, EvalOptions), ("output", output, Output)):
        if not isinstance(value, kind):
            raise LandscapeError(f"`{name}` must be a landscape.{kind.__name__}, got {type(value).__name__}")
    comm = comm or world()
    local_rank, local_size = local_rank_and_size(comm)
    provenance = dict(output.provenance or {})
    provenance.setdefault("command", _python_command(grid, [("directions", directions),
                                                            ("evaluation", evaluation), ("output", output)]))
    was_training = model.training
    home = next((t.device for t in model.state_dict().values()), torch.device("cpu"))
    contiguous = all(p.is_contiguous() for p in model.parameters())
    run = None
    with using_threads(evaluation.threads, local_size) as n_threads:
        try:
            run = collective(comm, lambda: _setup(model, data, grid, directions, metrics, evaluation, output.path,
                                                  comm, local_rank))
            return _run(run, comm, output, provenance, n_threads)
        finally:  # the model as it came: at its origin, on its device, in its memory format and mode
            if run is not None:
                run.mover.restore_()
                if run.bn is not None:
                    run.bn.restore_()
            model.to(home)
            if contiguous:
                model.to(memory_format=torch.contiguous_format)
            model.train(was_training)


@dataclass
class _Run:
    """What one rank holds for a surface run, from :func:`_setup` on."""

    grid: Grid
    directions: Directions
    evaluation: EvalOptions
    device: torch.device
    model: nn.Module
    origin: dict
    dirs: list[dict]
    mover: Mover
    evaluations: list[Evaluation]
    user_metrics: list
    context: Context
    dirs_checksum: str
    origin_checksum: str
    bn: BatchNormRecompute | None = None


def _setup(model, data, grid: Grid, directions: Directions, metrics, evaluation: EvalOptions, out: str | None, comm,
           local_rank: int) -> _Run:
    """Everything a rank needs before the points: device, metrics (not set up yet), mover."""
    if not live_tensors(model, directions.dir_type):
        what = "parameters" if directions.dir_type == "weights" else "floating-point parameters or buffers"
        raise LandscapeError(f"the model ({type(model).__name__}) has no {what}: a landscape moves them")
    dev = resolve_device(evaluation.device)
    if dev.type == "cuda" and dev.index is None:
        dev = torch.device("cuda", local_rank % torch.cuda.device_count())  # this rank's GPU on its node
    if dev.type == "cuda":
        torch.cuda.set_device(dev)
    splits = by_split(data)
    first = next(iter(splits.values()))
    sample = first.x[:1] if hasattr(first, "x") else (
        first[0][:1] if isinstance(first, tuple | list) and first and torch.is_tensor(first[0]) else None)
    user_metrics = _metrics(metrics)
    # channels-last speeds forward passes up, but a metric may run better without (Hessian products)
    channels_last = uses_channels_last(model, sample) and all(getattr(m, "channels_last", True)
                                                              for m in user_metrics)
    place_(model, dev, channels_last)
    model.eval()
    origin = snapshot(model, directions.dir_type)
    cpu_origin = {k: v.detach().cpu() for k, v in origin.items()}
    if directions.tensors is not None:
        dirs = _check_directions(directions.tensors, grid.ndim, cpu_origin)
    else:
        dirs = random_directions(cpu_origin, grid.ndim, directions.norm, directions.ignore, directions.seed,
                                 directions.semantics, lazy=not directions.hold)
    del cpu_origin
    mover = Mover(model, origin, dirs, directions.dir_type)

    # Batch sizes: the user's; else those of the file being resumed; else rank 0's probe.
    sizes = {}
    batch_size = evaluation.batch_size
    if batch_size is None and out and os.path.exists(out):
        recorded = peek_attrs(out).get("batch_size", "")
        try:
            sizes = json.loads(recorded) if isinstance(recorded, str) and recorded.startswith("{") else {}
        except ValueError:
            sizes = {}
    e = evaluation
    evaluations = [Evaluation(d, s, e.loss_fn, e.accuracy_fn, batch_size or sizes.get(s), e.precision, e.compile,
                              e.forward_fn, channels_last) for s, d in splits.items()]
    context = Context(model, dev, grid=grid, rank=comm.rank, forward_fn=e.forward_fn)
    return _Run(grid, directions, evaluation, dev, model, origin, dirs, mover, evaluations, user_metrics, context,
                directions_checksum(dirs), tensors_checksum(origin))


def _setup_metrics(run: _Run, comm) -> list:
    """Set every metric up on this rank; rank 0 probes the batch sizes and the others take them."""
    ctx, evaluations = run.context, run.evaluations

    def setup_evaluations():
        for e in evaluations:
            e.setup(ctx)
        return [e.batch_size for e in evaluations]

    if comm.size > 1 and run.evaluation.batch_size is None:
        sizes = on_root(comm, setup_evaluations)  # only rank 0 probes: one batch size everywhere
        if comm.rank != 0:
            def take():
                for e, b in zip(evaluations, sizes, strict=True):
                    e.batch_size = b
                return setup_evaluations()
            collective(comm, take)
        else:
            collective(comm, lambda: None)
    else:
        collective(comm, setup_evaluations)
    ctx.data = evaluations[0].batches
    ctx.loss_fn = evaluations[0].loss_fn
    metrics = [*evaluations, *run.user_metrics]
    e = run.evaluation

    def setup_rest():
        for m in run.user_metrics:
            if hasattr(m, "setup"):
                m.setup(ctx)
        if e.bn_recompute:
            from landscape.batches import as_batches

            if not has_batchnorm(run.model):
                raise LandscapeError("BatchNorm statistics cannot be recomputed: the model has no BatchNorm")
            batches = (as_batches(e.bn_data, run.device, evaluations[0].batch_size or 256)
                       if e.bn_data is not None else ctx.data)
            run.bn = BatchNormRecompute(run.model, batches, e.bn_recompute, e.forward_fn)
        check_names(metrics)

    collective(comm, setup_rest)
    return metrics


def _inputs(run: _Run, metrics: list) -> dict:
    """Everything the values depend on (checked on resume), built from the objects themselves."""
    grid = run.grid
    coords = hashlib.sha256(b"".join(np.asarray(c, dtype="<f8").tobytes() for c in grid.coordinates()))
    model = run.model
    core = {
        "grid": grid.specs(), "coordinates": coords.hexdigest(),
        "model": f"{type(model).__module__}.{type(model).__qualname__}:{run.origin_checksum}",
        "dir_type": run.directions.dir_type, "directions": run.dirs_checksum,
        "bn_recompute": run.bn.config() if run.bn is not None else 0,
    }
    if grid.adaptive:  # only then: files of full grids keep their inputs as they were
        core["adaptive"] = grid.adaptive
    per_name = {}
    for m in metrics:
        cfg = config_of(m)
        for n in m.names:
            per_name[n] = cfg
    return {**core, "metrics": per_name}


def _provenance(run: _Run, metrics: list, comm, n_threads: int, provenance: Mapping) -> dict:
    evaluations = run.evaluations
    grid = run.grid
    d = run.directions
    given = d.tensors is not None

    def per_axis(v) -> str:
        values = [v] if isinstance(v, str) else list(v)[:grid.ndim]
        return values[0] if len(set(values)) == 1 else ",".join(values)

    attrs = {
        **environment(),
        "model_class": f"{type(run.model).__module__}.{type(run.model).__qualname__}",
        "model_tensors_sha256": run.origin_checksum,
        "split": ",".join(e.split for e in evaluations),
        "samples": evaluations[0].evaluator.n,
        "loss": evaluations[0].loss_name, "dir_type": d.dir_type,
        "norm": "" if given else per_axis(d.norm),
        "ignore": "" if given else per_axis(d.ignore),
        "seed": "" if given else d.seed, "semantics": d.semantics,
        "directions_sha256": run.dirs_checksum,
        "precision": evaluations[0].precision, "compile": evaluations[0].compile,
        "device": str(run.device), "mpi_ranks": comm.size, "threads_per_rank": n_threads,
        "batch_size": json.dumps({e.split: e.batch_size for e in evaluations}),
        "metrics": ",".join(n for m in metrics for n in m.names),
        "bn_recompute": run.bn.num_batches if run.bn is not None else 0,
    }
    for axis, spec in zip("xyz", grid.specs(), strict=False):
        attrs[f"{axis}spec"] = spec
    attrs.update(provenance)
    return attrs


def _open(out: str, coords: list[np.ndarray], names: list[str], inputs: dict, attrs: dict, overwrite: bool,
          repair: bool, arrays: Mapping, lock_also: Sequence[str], locks: list, what: str) -> Surface:
    """Rank 0: lock the output (and ``lock_also``), then resume the existing file when it matches,
    else start a new one (never clobber)."""
    size = int(np.prod([len(c) for c in coords]))
    check_output(out)
    for path in (out, *lock_also):
        locks.append(OutputLock(path).acquire())
        remove_stale_temporaries(path)
    if os.path.exists(out) and not overwrite:
        try:
            old = read_surface(out)
        except DamagedFile:
            if not repair:
                raise
            old, kept = repair_surface(out, coords, inputs)
            old.attrs.update(attrs)  # a damaged file's attributes are not trusted: the run's replace them
            old.attrs["repaired"] = f"{now()}: kept {kept} of {size} points"
        recorded = old.inputs()
        if not recorded:
            raise ConfigMismatch(f"{out!r} holds a {what} that does not record its inputs (another tool, or "
                                 "landscape 0.1), so it cannot be resumed safely")
        reason = _mismatch(recorded, inputs)
        if reason:
            raise ConfigMismatch(f"{out!r} holds a {what} of another configuration ({reason})")
        for n in names:
            old.add(n)
        old.attrs.update({k: attrs[k] for k in CONTEXT_KEYS if k in attrs})
        old.attrs["inputs"] = json.dumps({**inputs, "metrics": {**recorded.get("metrics", {}),
                                                                **inputs["metrics"]}}, sort_keys=True)
        old.attrs["metrics"] = ",".join(old.values)
        old.attrs["resumed"] = now()
        return old
    surface = new_surface(coords, names, attrs)
    surface.attrs["inputs"] = json.dumps(inputs, sort_keys=True)
    surface.arrays.update(arrays)
    return surface


def run_points(
    coords: list[np.ndarray],
    metrics: Sequence,
    job: Callable[[int, Sequence[int]], dict],
    *,
    inputs: dict,
    attrs: dict,
    comm,
    out: str | None = None,
    overwrite: bool = False,
    repair: bool = False,
    arrays: Mapping | None = None,
    lock_also: Sequence[str] = (),
    on_open: Callable[[Surface], None] | None = None,
    chunk_size: int = 1,
    flush_seconds: float = 2.0,
    progress: bool = True,
    what: str = "surface",
    refinement=None,
) -> Surface:
    """Compute what is pending of a grid into a surface file: the machinery every grid computation
    shares (surfaces, pruning's sensitivity scan). Collective: every rank calls it.

    Rank 0 locks ``out`` (and ``lock_also``), resumes it when its recorded ``inputs`` match (else
    refuses, or repairs a damaged file), calls ``on_open(surface)`` before the first write, and
    hands out the pending points: ``job(p, metric_indices)`` computes the values of the metrics
    still missing at flat point ``p``. Every rank returns the finished :class:`Surface`.
    ``refinement``: a :class:`landscape.adaptive.Refinement`: the points in its rounds only, the rest
    interpolated at the end (an ``evaluated`` mask and the tolerance recorded).
    """
    names = [n for m in metrics for n in m.names]
    locks: list[OutputLock] = []

    def open_output():
        if out is None:
            s = new_surface(coords, names, attrs)
            s.attrs["inputs"] = json.dumps(inputs, sort_keys=True)
            s.arrays.update(arrays or {})
        else:
            s = _open(out, coords, names, inputs, attrs, overwrite, repair, arrays or {}, lock_also, locks, what)
        if on_open is not None:
            on_open(s)
        if out is not None:
            write_surface(out, s)
        return s

    try:
        surf = on_root(comm, open_output)
        # Which metrics each pending point still needs: rank 0 knows, and tells every rank.
        todo = None
        if comm.rank == 0:
            todo = {}
            for m_index, m in enumerate(metrics):
                for p in surf.pending(list(m.names)):
                    todo.setdefault(int(p), []).append(m_index)
        todo = share(comm, todo)
        if refinement is None:
            surf = _compute(surf, comm, todo, lambda p: job(p, todo[p]), out, chunk_size, flush_seconds, progress)
        else:
            surf = _refine(surf, comm, todo, job, refinement, out, chunk_size, flush_seconds, progress)
    finally:
        for lock in locks:
            lock.release()
    surf = share(comm, surf)
    surf.path = out
    return surf


def _save_directions(dpath: str, run: _Run, attrs: Mapping, overwrite: bool) -> None:
    """Write the run's directions beside the surface, never replacing other directions silently."""
    from landscape.directions import load_directions

    checksum = run.dirs_checksum
    if os.path.exists(dpath):
        try:
            same = directions_checksum(load_directions(dpath)[0][:len(run.dirs)]) == checksum
        except LandscapeError:
            same = False
        if same:
            return
        if not overwrite:
            raise ConfigMismatch(f"{dpath!r} holds other directions (other surfaces may use them)")
    keys = ("dir_type", "norm", "ignore", "seed", "semantics", "arch", "model_class", "model_tensors_sha256",
            "landscape_version")
    save_directions(dpath, run.dirs, {k: attrs[k] for k in keys if k in attrs})


def _run(run: _Run, comm, output: Output, provenance: Mapping, n_threads: int) -> Surface:
    grid, out, max_points = run.grid, output.path, output.max_points
    same_everywhere(comm, run.dirs_checksum, "the directions")
    metrics = _setup_metrics(run, comm)
    ctx, model, mover, bn = run.context, run.model, run.mover, run.bn

    def job(p: int, needed: Sequence[int]) -> dict:
        coords = grid.point(p)
        mover.move_(coords)
        if bn is not None:
            bn()
        ctx.point = Point(p, coords)
        values: dict[str, float] = {}
        for m_index in needed:
            values.update(values_of(metrics[m_index], metrics[m_index](model)))
        return values

    if max_points is not None and grid.size > max_points:
        t0 = time.perf_counter()
        job(0, range(len(metrics)))
        seconds = (time.perf_counter() - t0) * grid.size / comm.size
        raise GridTooLarge(f"the grid has {grid.size:,} points (more than {max_points:,}); at "
                             f"{seconds / grid.size * comm.size:.2g} s per point on {comm.size} rank(s) that is "
                             f"about {seconds / 3600:.3g} hours; allow it explicitly to go ahead")
    attrs = _provenance(run, metrics, comm, n_threads, provenance) if comm.rank == 0 else {}
    dpath = (directions_path(out) if output.directions_file is None else output.directions_file) if out else ""

    def on_open(surface: Surface) -> None:
        if dpath:
            _save_directions(dpath, run, attrs, output.overwrite)
            surface.attrs["directions_file"] = os.path.abspath(dpath)
        pending = int(surface.pending().size)
        _report_fast_paths(run.evaluations, pending, comm.size, surface)

    refinement = None
    if grid.adaptive:
        from landscape.adaptive import Refinement

        refinement = Refinement(grid.shape, grid.adaptive, metrics[0].names[0])  # refined on the first split's loss
    surf = run_points(grid.coordinates(), metrics, job, inputs=_inputs(run, metrics), attrs=attrs, comm=comm,
                      out=out, overwrite=output.overwrite, repair=output.repair, arrays=output.arrays,
                      lock_also=[dpath] if dpath else [], on_open=on_open, chunk_size=output.chunk_size,
                      flush_seconds=output.flush_seconds, progress=output.progress, refinement=refinement)
    surf.directions = run.dirs
    return surf


def _report_fast_paths(evaluations, pending: int, ranks: int, surf: Surface) -> None:
    """Say what compiling cost and whether this run repays it (recorded in the file too)."""
    for e in evaluations:
        ev = e.evaluator
        if ev.bf16_speedup:
            surf.attrs["bf16_speedup"] = round(ev.bf16_speedup, 3)
        if ev.compile_seconds is None:
            continue
        surf.attrs["compile_seconds"] = round(ev.compile_seconds, 2)
        break_even = ev.compile_seconds / ev.compile_saving if ev.compile_saving else float("inf")
        line = (f"landscape: torch.compile took {ev.compile_seconds:.1f} s and saves {ev.compile_saving:.3g} s "
                f"per point ({e.split}); it repays after {break_even:.0f} points per rank")
        if pending / ranks < break_even:
            line += f", and this run has {pending / ranks:.0f}: it would be faster without compile"
        sys.stderr.write(line + "\n")


def _refine(surf: Surface | None, comm, todo: dict, job, refinement, out, chunk_size, flush_seconds,
            progress) -> Surface:
    """The rounds of an adaptive grid: each round's points spread over the ranks (those already in
    a resumed file skipped), rank 0 choosing the next round from the values so far."""
    points = refinement.start()
    while points is not None:
        round_todo = {p: todo[p] for p in points if p in todo}
        surf = _compute(surf, comm, round_todo, lambda p, t=round_todo: job(p, t[p]), out, chunk_size, flush_seconds,
                        progress, final=False)

        def decide(s=surf):
            return refinement.refine(s.values[refinement.key], s.done[refinement.key]), refinement.round

        points, refinement.round = on_root(comm, decide)
    if comm.rank == 0:
        surf.values.update(refinement.fill(surf.values, surf.done))
        surf.arrays["evaluated"] = surf.done[refinement.key].astype(np.uint8)
        surf.attrs["adaptive_tol"] = refinement.tol
        evaluated = surf.arrays["evaluated"]
        surf.attrs["adaptive_evaluated"] = f"{int(evaluated.sum())} of {evaluated.size} points"
        surf.attrs["finished"] = time.strftime("%Y-%m-%dT%H:%M:%S%z")
        if out is not None:
            write_surface(out, surf)
    return surf


def _compute(surf: Surface | None, comm, todo: dict, job, out, chunk_size, flush_seconds, progress,
             final: bool = True) -> Surface:
    pending = sorted(todo)
    bar = None
    if comm.rank == 0 and progress and pending:
        from landscape.progress import progress_bar

        total = int(np.prod(surf.shape))
        bar = progress_bar(total=total, initial=total - len(pending), desc="surface", unit="pt")
    last_write, interval = time.monotonic(), flush_seconds

    def on_result(p: int, values: dict) -> None:
        nonlocal last_write, interval
        surf.record(p, values)
        if bar is not None:
            bar.update(1)
        if out is not None and time.monotonic() - last_write >= interval:
            t0 = time.monotonic()
            write_surface(out, surf)
            last_write = time.monotonic()
            interval = max(flush_seconds, 10 * (last_write - t0))  # a big file: writing stays under 10%

    def save() -> None:
        if surf is not None and out is not None:
            write_surface(out, surf)

    try:
        map_points(job, pending, on_result, comm, chunk_size, on_abort=save)
    except BaseException:
        if comm.size == 1:
            save()  # keep every finished point of an interrupted serial run
        raise
    finally:
        if bar is not None:
            bar.close()
    if comm.rank == 0:
        if final:
            surf.attrs["finished"] = now()
        save()
    return surf


__all__ = ["MAX_POINTS", "Directions", "EvalOptions", "Output", "directions_path", "run_points", "surface",
           "tensors_checksum"]
