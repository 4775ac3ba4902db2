"""The point runner, :func:`compute_points`: the resumable, locked, MPI-distributed computation of a
grid of points into one file, the core that every grid computation shares (the surface, the
pruning scan, the path of a curve, the comparison table).

What it guarantees, for every client:

- **resume by recorded inputs**: the file records everything its values depend on (``inputs``);
  a rerun keeps the finished points of a file whose inputs match and refuses one whose do not,
  naming the first input that differs (``overwrite`` replaces it; a damaged file is refused, or
  with ``repair`` its verified points kept);
- **one writer**: rank 0 holds the output's lock (and those of ``lock_also``) for the whole run;
- **atomic flushes**: the file is rewritten whole to a temporary and renamed, every few seconds
  (never more than a tenth of the time) and at the end, so a killed run leaves a valid file with
  its finished points;
- **MPI hand-out**: rank 0 hands out the pending points to every rank (serially: one rank), and
  every rank gets the finished :class:`~landscape.io.surface_file.Surface`;
- **adaptive rounds**: with a ``refinement``, only the points of its rounds are computed and the
  rest interpolated at the end.
"""

from __future__ import annotations

import json
import os
import time
from collections.abc import Callable, Mapping, Sequence

import numpy as np

from landscape.engine.options import Output
from landscape.io.files import OutputLock, check_output, remove_stale_temporaries
from landscape.io.h5 import DamagedFile
from landscape.io.surface_file import ConfigMismatch, Surface, new_surface, read_surface, repair_surface, write_surface
from landscape.runtime.parallel import map_points, on_root, share
from landscape.runtime.progress import progress_bar
from landscape.runtime.provenance import now

# What is refreshed on resume rather than checked: it says how this run went, not what it computed.
CONTEXT_KEYS = ("command", "batch_size", "mpi_ranks", "device", "hostname", "threads_per_rank", "compile",
                "torch_version", "landscape_version", "numpy_version", "h5py_version", "python_version")


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


def compute_points(
    coords: list[np.ndarray],
    metrics: Sequence,
    job: Callable[[int, Sequence[int]], dict],
    *,
    inputs: dict,
    attrs: dict,
    output: Output,
    comm,
    lock_also: Sequence[str] = (),
    on_open: Callable[[Surface], None] | None = None,
    what: str = "surface",
    refinement=None,
) -> Surface:
    """Compute what is pending of the grid ``coords`` into the file ``output.path`` (None: in memory
    only). Collective: every rank calls it; every rank returns the finished :class:`Surface`.

    ``metrics``: objects with ``names`` (the arrays they fill) and ``config()`` (recorded in
    ``inputs["metrics"]``); ``job(p, metric_indices)`` computes the values of the metrics still
    missing at flat point ``p``. ``inputs``: what the values depend on (compared on resume);
    ``attrs``: provenance, with ``output.provenance`` on top. ``output``: the file, ``overwrite``,
    ``repair``, ``chunk_size``, ``flush_seconds``, ``progress`` and ``arrays`` of an
    :class:`~landscape.engine.options.Output`. Rank 0 locks the file (and ``lock_also``), resumes it
    when its recorded ``inputs`` match (else refuses, or repairs a damaged file; ``what`` names the
    file's kind in those messages), calls ``on_open(surface)`` before the first write, and hands out
    the pending points. ``refinement``: a :class:`landscape.engine.refinement.Refinement`: the points
    in its rounds only, the rest interpolated at the end (an ``evaluated`` mask and the tolerance
    recorded).
    """
    out, overwrite, repair, arrays = output.path, output.overwrite, output.repair, output.arrays
    chunk_size, flush_seconds, progress = output.chunk_size, output.flush_seconds, output.progress
    attrs = {**attrs, **(output.provenance or {})}
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
        checks = refinement.validation  # the random sample that checked the estimate, and the two fills' agreement
        surf.attrs["adaptive_validated"] = checks["validated"]
        surf.attrs["adaptive_validation_error"] = checks["largest_error"]
        surf.attrs["adaptive_validation_missed"] = checks["missed"]
        surf.attrs["adaptive_disagreement"] = checks["disagreement"]
        surf.attrs["finished"] = time.strftime("%Y-%m-%dT%H:%M:%S%z")
        if out is not None:
            write_surface(out, surf)
    return surf


def _compute(surf: Surface | None, comm, todo: dict, job, out, chunk_size, flush_seconds, progress,
             final: bool = True) -> Surface:
    pending = sorted(todo)
    bar = None
    if comm.rank == 0 and progress and pending:
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
