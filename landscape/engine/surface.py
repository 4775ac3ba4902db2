"""Computing a surface: ``landscape.surface(model, data, grid, directions=..., evaluation=..., output=...)``.

model + data -> directions -> grid -> metrics at every point (the model moved in place by a
:class:`landscape.space.params.Mover`) -> the point runner (:func:`landscape.engine.points.compute_points`:
MPI when launched by ``mpirun``, else serial) -> the surface file, written by rank 0 alone. The
options come in frozen objects that check themselves when built: :class:`landscape.Directions`,
:class:`landscape.EvalOptions` and :class:`landscape.Output` (the grid is a :class:`landscape.Grid`).

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
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, fields, replace

import numpy as np
import torch
from torch import nn

from landscape.data.batches import as_batches, by_split
from landscape.directions.options import Directions
from landscape.directions.sampling import directions_checksum, random_directions
from landscape.engine.options import Output, directions_path
from landscape.engine.points import compute_points
from landscape.engine.refinement import REFINEMENT_VERSION, Refinement
from landscape.errors import GridTooLarge, LandscapeError
from landscape.evaluation.batchnorm import BatchNormRecompute, has_batchnorm
from landscape.evaluation.evaluator import Evaluation
from landscape.evaluation.metrics import Context, Point, as_metric, check_names, config_of, values_of
from landscape.evaluation.options import EvalOptions
from landscape.io.directions_file import load_directions, save_directions
from landscape.io.surface_file import ConfigMismatch, Surface, peek_attrs
from landscape.runtime.device import resolve_device
from landscape.runtime.parallel import collective, local_rank_and_size, on_root, same_everywhere, world
from landscape.runtime.provenance import environment
from landscape.runtime.threads import using_threads
from landscape.space.grid import Axis, Grid, as_grid
from landscape.space.params import (
    LazyDirection,
    Mover,
    live_tensors,
    place_,
    snapshot,
    tensors_checksum,
    uses_channels_last,
)


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
    ``grid``: a :class:`landscape.space.grid.Grid` (``Grid(x=(-1, 1, 41), y="-1:1:41")``), or one axis
    for a 1D surface. ``directions``: :class:`Directions` (default: random, filter-normalized,
    biases and BatchNorm ignored), or your own as a list of dicts of tensors named like ``model``'s.
    ``metrics``: extra quantities at every point, ``{name: fn(model) -> float}`` or metric objects
    (see :mod:`landscape.evaluation.metrics`). ``evaluation``: :class:`EvalOptions` (loss, accuracy, batch
    size, device, precision, ...). ``output``: :class:`Output` (the file, resume, provenance, ...);
    default: no file. Under ``mpirun`` every rank calls this and every rank gets the result.

    ``model`` is used in place (moved to the device) and put back at its origin, on its device and
    in its mode afterwards, also when the call raises. It runs at ``evaluation.threads`` torch
    threads (None: torch's count as it stands; under ``mpirun``, give a count or set
    ``OMP_NUM_THREADS`` so the ranks of a node share its cores) and restores the caller's count.
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
    local_rank, _ = local_rank_and_size(comm)
    provenance = dict(output.provenance or {})
    provenance.setdefault("command", _python_command(grid, [("directions", directions),
                                                            ("evaluation", evaluation), ("output", output)]))
    was_training = model.training
    home = next((t.device for t in model.state_dict().values()), torch.device("cpu"))
    contiguous = all(p.is_contiguous() for p in model.parameters())
    run = None
    with using_threads(evaluation.threads) as n_threads:
        evaluation = replace(evaluation, threads=n_threads)  # explicit from here on (it keys the batch-size probe)
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
    evaluations = [Evaluation(d, s, replace(e, batch_size=batch_size or sizes.get(s)), channels_last=channels_last)
                   for s, d in splits.items()]
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
                    e.options = replace(e.options, batch_size=b)
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
        core["refinement"] = REFINEMENT_VERSION  # another version plays other rounds: its files are not resumed
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


def _save_directions(dpath: str, run: _Run, attrs: Mapping, overwrite: bool) -> None:
    """Write the run's directions beside the surface, never replacing other directions silently."""
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
        refinement = Refinement(grid.shape, grid.adaptive, metrics[0].names[0])  # refined on the first split's loss
    surf = compute_points(grid.coordinates(), metrics, job, inputs=_inputs(run, metrics), attrs=attrs, output=output,
                          comm=comm, lock_also=[dpath] if dpath else [], on_open=on_open, refinement=refinement)
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
