"""Comparing K minima by numbers: ``landscape-compare A.pt B.pt ... --out DIR``.

For K checkpoints of one architecture: train and test loss and error, the generalization gap
(test error - train error), each sharpness measure of :mod:`landscape.sharpness` with its
standard error, and Kendall's tau of every measure against the gap. Written to ``DIR``:

- ``compare.h5``: the values as a surface file over the grid (checkpoint, job), one completion
  flag per (checkpoint, measure), so a killed run resumes where it stopped and a run of another
  configuration is refused; provenance (checkpoints and their SHA-256, data, options, versions);
- ``compare.csv`` and ``compare.md``: the table: per measure its value, standard error, whether it
  converged and what it is (paper, parameters perturbed, scale, radius, units); the Markdown marks
  unconverged values with a dagger and adds Kendall's tau;
- ``curves_1d.png``: the K filter-normalized 1D curves on one axis; ``contours_2d.png``: the 2D
  contours side by side on one colour scale (:func:`landscape.plot.compare_figure`);
  ``gap_vs_measure.png``: the gap against every measure (:func:`landscape.plot.sharpness.gap_figure`);
  the surfaces themselves in ``DIR/surfaces/``.

Every MPI rank calls :func:`compare`; the (checkpoint, measure) jobs are spread over the ranks as
grid points, and rank 0 writes the files. Each checkpoint is read once.
"""

from __future__ import annotations

import csv
import io
import json
import os
import time
from dataclasses import dataclass, field

import numpy as np
import torch

from landscape import sharpness
from landscape.data.batches import data_checksum
from landscape.data.datasets import DataSpec
from landscape.directions.options import Directions
from landscape.engine.options import Output
from landscape.engine.points import compute_points
from landscape.engine.surface import surface
from landscape.errors import LandscapeError, OutputExists
from landscape.evaluation.evaluator import Evaluator
from landscape.evaluation.options import EvalOptions
from landscape.io.checkpoint import read_checkpoint
from landscape.io.files import check_folder, replacing, write_text
from landscape.io.surface_file import read_surface, write_surface
from landscape.jobs.network import network
from landscape.lowrank import unfactorized_names
from landscape.plot.compare import compare_figure, describe_training
from landscape.plot.sharpness import gap_figure
from landscape.runtime.device import resolve_device
from landscape.runtime.parallel import SerialComm, collective, local_rank_and_size, on_root, world
from landscape.runtime.progress import announce, duration, is_long
from landscape.runtime.provenance import environment
from landscape.runtime.threads import choose_threads, using_threads
from landscape.space.grid import Grid, make_axis

FILES = ("compare.h5", "compare.csv", "compare.md", "curves_1d.png", "contours_2d.png", "gap_vs_measure.png")
EVALUATIONS = ("train", "test")  # the first jobs of every checkpoint: loss and error on each split
MEASURES = ("avg_filter", "avg_elementwise", "avg_none", "worst_filter", "worst_elementwise", "worst_none",
            "epsilon", "lambda_max", "trace", "curvature")
DEFAULT_MEASURES = ("avg_filter", "avg_elementwise", "avg_none", "worst_filter", "worst_elementwise", "worst_none",
                    "epsilon", "lambda_max", "trace", "curvature")
ARRAYS = ("value", "stderr", "error", "converged", "forward", "backward", "seconds")
UNCONVERGED = "\u2020"  # the Markdown table's mark of a value whose estimate did not converge
NONE = ("", "none", "0")
# What a job costs, counted in forward passes over the measured split (for the progress lines' ETA
# and the estimate of a long run): an ascent step as 3 (forward, backward), a Hessian-vector
# product as 4 (its backward is differentiated again), Lanczos and Hutchinson at their usual counts.
STEP_PASSES, PRODUCT_PASSES, LANCZOS_PRODUCTS, TRACE_PRODUCTS = 3, 4, 30, 100


@dataclass(frozen=True)
class CompareConfig(DataSpec):
    """What ``landscape-compare`` does (its options): the checkpoints, their architecture, the data
    (the fields of :class:`landscape.data.datasets.DataSpec`; the measures are taken on ``split``), the
    measures and their settings, the figures' grids (``"none"``: no figure) and the output folder."""

    checkpoints: tuple[str, ...] = ()
    arch: str | None = None
    out: str = "compare"
    measures: tuple[str, ...] = DEFAULT_MEASURES
    radius: float = 0.05
    eps: float = 1e-3
    mc_samples: int = 20
    tol: float = 0.05
    steps: int = 20
    restarts: int = 3
    p: str = "2"
    m: int | None = None
    curvature_radius: float = 0.1
    curvature_points: int = 7
    line: str = "-1:1:21"
    plane: str = "-1:1:11"
    seed: int = 0
    loss: str = "crossentropy"
    batch_size: int | None = None
    device: str = "cpu"
    threads: int | None = None
    overwrite: bool = False
    unsafe_pickle: bool = False
    plot: bool = True
    command: str = ""
    provenance: dict = field(default_factory=dict)  # more attributes for the file (the command line)

    def jobs(self) -> list[str]:
        return [*EVALUATIONS, *self.measures]


@dataclass(frozen=True)
class Comparison:
    """The finished table: one row per checkpoint (``rows``: dicts of the CSV's columns), Kendall's
    tau of every measure against the gap, the files written, and how many jobs and surface
    points this run ``computed`` (0: a rerun that found everything done)."""

    rows: tuple[dict, ...]
    correlations: tuple[sharpness.Correlation, ...]
    paths: tuple[str, ...]
    computed: int = 0


@dataclass
class _Minimum:
    given: str  # the path as the user gave it
    path: str
    sha256: str
    model: torch.nn.Module
    info: dict
    title: str


def _check(cfg: CompareConfig) -> None:
    if len(cfg.checkpoints) < 2:
        raise LandscapeError(f"comparing needs at least 2 checkpoints, got {len(cfg.checkpoints)}")
    if len(set(map(os.path.abspath, cfg.checkpoints))) != len(cfg.checkpoints):
        raise LandscapeError("a checkpoint is given twice")
    if not cfg.arch:
        raise LandscapeError("an architecture is needed (a zoo name or package.module:callable): give `arch`")
    unknown = [m for m in cfg.measures if m not in MEASURES]
    if unknown:
        raise LandscapeError(f"unknown measure {unknown[0]!r}; choose from {', '.join(MEASURES)}")
    if len(set(cfg.measures)) != len(cfg.measures):
        raise LandscapeError("a measure is named twice")
    for name in ("radius", "eps", "curvature_radius"):
        sharpness.check_radius(getattr(cfg, name), f"`{name}`")
    sharpness.check_p(cfg.p)
    for name in ("mc_samples", "steps", "restarts", *(("m",) if cfg.m is not None else ())):
        sharpness.check_count(getattr(cfg, name), f"`{name}`")
    if not (isinstance(cfg.tol, int | float) and 0 <= cfg.tol < 1):
        raise LandscapeError(f"`tol` is a relative standard error between 0 and 1 (e.g. 0.05), got {cfg.tol!r}")
    if "curvature" in cfg.measures:
        sharpness.check_points(cfg.curvature_points)
    resolve_device(cfg.device)  # one line naming a device that is not one, or not here
    if cfg.split not in EVALUATIONS:
        raise LandscapeError(f"split must be train or test, got {cfg.split!r}")


def _grid(spec: str):
    return None if str(spec).strip().lower() in NONE else make_axis(spec)


def _load(cfg: CompareConfig, data) -> list[_Minimum]:
    """Every checkpoint read once: its model, what it records, its title; all of one architecture."""
    ckpts = [read_checkpoint(path, cfg.unsafe_pickle) for path in cfg.checkpoints]
    infos = [ckpt.summary() for ckpt in ckpts]
    archs = {str(i["arch"]) for i in infos if i.get("arch")}
    if len(archs) > 1:
        raise LandscapeError(f"the checkpoints are of different architectures ({', '.join(sorted(archs))})")
    out: list[_Minimum] = []
    for path, ckpt, info in zip(cfg.checkpoints, ckpts, infos, strict=True):
        model = network(ckpt, cfg.arch, cfg.num_classes, data=data)
        out.append(_Minimum(path, os.path.abspath(path), ckpt.sha256, model, info,
                            describe_training(info, str(info.get("arch") or cfg.arch))))
    first = unfactorized_names(out[0].model)  # a low-rank network is of the architecture it was factorized from
    for m in out[1:]:
        if unfactorized_names(m.model) != first:
            raise LandscapeError(f"{m.path!r} and {out[0].path!r} are different architectures (other tensors)")
    return out


def _kind(name: str) -> tuple[str, str]:
    """A column's measure and normalization: ``avg_filter`` -> ``("average_case", "filter")``."""
    if name.startswith("avg_"):
        return "average_case", name[4:]
    if name.startswith("worst_"):
        return "worst_case", name[6:]
    return {"epsilon": ("epsilon", "box"), "lambda_max": ("lambda_max", "none"),
            "trace": ("hessian_trace", "none"), "curvature": ("curvature", "filter")}[name]


def definition(name: str, cfg: CompareConfig) -> dict[str, str]:
    """What column ``name`` holds (:func:`landscape.sharpness.definition` with the options of ``cfg``)."""
    measure, norm = _kind(name)
    ignore = Directions(norm=norm).ignore if measure in ("average_case", "worst_case", "curvature") else "none"
    radius = {"epsilon": cfg.eps, "curvature": cfg.curvature_radius}.get(name, cfg.radius)
    return sharpness.definition(measure, norm, ignore, radius, sharpness.check_p(cfg.p), cfg.m)


def _measure(name: str, model, data, cfg: CompareConfig, comm) -> sharpness.Sharpness:
    evaluation = EvalOptions(loss_fn=cfg.loss, batch_size=cfg.batch_size, device=cfg.device)
    measure, norm = _kind(name)
    if measure == "average_case":
        return sharpness.average_case(model, data, radius=cfg.radius, directions=Directions(norm=norm, seed=cfg.seed),
                                      samples=cfg.mc_samples, tol=cfg.tol, evaluation=evaluation, comm=comm)
    if measure == "worst_case":
        return sharpness.worst_case(model, data, radius=cfg.radius, p=cfg.p, m=cfg.m, steps=cfg.steps,
                                    restarts=cfg.restarts, directions=Directions(norm=norm, seed=cfg.seed),
                                    evaluation=evaluation, comm=comm)
    if measure == "epsilon":
        return sharpness.epsilon(model, data, eps=cfg.eps, steps=cfg.steps, restarts=cfg.restarts, seed=cfg.seed,
                                 evaluation=evaluation, comm=comm)
    if measure == "lambda_max":
        return sharpness.lambda_max(model, data, seed=cfg.seed, evaluation=evaluation)
    if measure == "hessian_trace":
        return sharpness.hessian_trace(model, data, seed=cfg.seed, evaluation=evaluation)
    return sharpness.curvature(model, data, radius=cfg.curvature_radius, points=cfg.curvature_points,
                               directions=Directions(seed=cfg.seed), evaluation=evaluation, comm=comm)


def _evaluate(model, data, cfg: CompareConfig) -> dict:
    t0 = time.perf_counter()
    ev = Evaluator(model, data, EvalOptions(loss_fn=cfg.loss, batch_size=cfg.batch_size or 256, device=cfg.device))
    if ev.accuracy_fn is None:
        raise LandscapeError("the data has no class labels: the error and the generalization gap need them")
    v = ev()
    return {"value": v["loss"], "stderr": np.nan, "error": 100.0 - v["acc"], "converged": np.nan, "forward": 1,
            "backward": 0, "seconds": time.perf_counter() - t0}


def _config(cfg: CompareConfig) -> dict:
    keys = ("radius", "eps", "mc_samples", "tol", "steps", "restarts", "p", "m", "curvature_radius",
            "curvature_points", "seed", "loss", "batch_size", "split", "arch")
    return {k: getattr(cfg, k) for k in keys}


class _Job:
    """The one 'metric' of the comparison grid: every (checkpoint, job) point fills these arrays."""

    names = ARRAYS


def job_cost(name: str, cfg: CompareConfig, sizes: dict[str, int]) -> float:
    """The cost of job ``name`` (an evaluation or a measure) in forward passes over the measured
    split; ``sizes``: the samples of each split."""
    if name in EVALUATIONS:
        return sizes[name] / sizes[cfg.split]
    if name.startswith("avg_"):
        return cfg.mc_samples + 1
    if name.startswith("worst_") or name == "epsilon":  # restarts of ascents, one started from Lanczos vectors
        return STEP_PASSES * cfg.steps * cfg.restarts + PRODUCT_PASSES * LANCZOS_PRODUCTS + 1
    if name == "lambda_max":
        return PRODUCT_PASSES * LANCZOS_PRODUCTS
    if name == "trace":
        return PRODUCT_PASSES * TRACE_PRODUCTS
    return cfg.curvature_points


def _estimate(cfg: CompareConfig, minima: list[_Minimum], data, costs: list[float], points: int, ranks: int) -> None:
    """Say how long the whole comparison will take when that is long: one forward pass over the
    data timed, times the passes counted (the table's jobs and every surface's points)."""
    t0 = time.perf_counter()
    _evaluate(minima[0].model, data, cfg)
    per_pass = time.perf_counter() - t0
    passes = sum(costs) + len(minima) * points
    seconds = per_pass * passes / ranks
    if is_long(seconds):
        announce(f"comparison: about {duration(seconds)} of work in all: {len(minima)} minima x "
                 f"{len(costs) // len(minima)} jobs and {points} surface points each, ~{passes:,.0f} forward "
                 f"passes over {len(data):,} samples at {per_pass:.2g} s each"
                 + (f", on {ranks} ranks" if ranks > 1 else ""))


def _named(minima: list[_Minimum], k: int) -> str:
    """Minimum ``k`` as progress lines name it: ``minimum 2 (b.pt)`` (the path as given when two
    files share a name: ``runs/sgd/final.pt``)."""
    names = [os.path.basename(m.given) for m in minima]
    return f"minimum {k + 1} ({names[k] if names.count(names[k]) == 1 else minima[k].given})"


def _check_outputs(cfg: CompareConfig) -> None:
    folder = os.path.abspath(cfg.out)
    if os.path.exists(folder) and not os.path.isdir(folder):
        raise LandscapeError(f"output {cfg.out!r} is a file, not a folder")
    check_folder(folder)
    if not cfg.overwrite and not os.path.exists(os.path.join(folder, "compare.h5")):
        there = [f for f in FILES[1:] if os.path.exists(os.path.join(folder, f))]
        if there:
            raise OutputExists(f"{os.path.join(cfg.out, there[0])!r} exists (from another comparison?)")


def compare(cfg: CompareConfig, comm=None, progress: bool = True) -> Comparison:
    """Compute (or resume) the comparison ``cfg`` describes and write its files (see the module
    docstring). Collective under MPI; bad input raises :class:`LandscapeError` before anything is
    written."""
    comm = comm or world()
    _check(cfg)
    line, plane = _grid(cfg.line), _grid(cfg.plane)
    collective(comm, lambda: _check_outputs(cfg))
    spec = DataSpec.of(cfg)
    splits = {s: spec.load(s)[0] for s in EVALUATIONS}
    if splits["train"].y.is_floating_point():
        raise LandscapeError("the data has no class labels: the error and the generalization gap need them")
    minima = collective(comm, lambda: _load(cfg, splits["train"]))
    data = splits[cfg.split]
    jobs = cfg.jobs()
    K, J = len(minima), len(jobs)
    folder = os.path.abspath(cfg.out)
    on_root(comm, lambda: os.makedirs(os.path.join(folder, "surfaces"), exist_ok=True))
    out = os.path.join(folder, "compare.h5")

    inputs = {
        "checkpoints": [m.sha256 for m in minima], "jobs": jobs, "config": _config(cfg),
        "data": {s: data_checksum((d.x, d.y)) for s, d in splits.items()}, "metrics": {},
    }
    attrs = {
        "what": "landscape-compare: rows are jobs (train, test, measures), columns checkpoints",
        "checkpoints": json.dumps([m.path for m in minima]), "titles": json.dumps([m.title for m in minima]),
        "checkpoint_sha256": json.dumps([m.sha256 for m in minima]), "jobs": json.dumps(jobs),
        "arch": cfg.arch, **spec.provenance(), "split": cfg.split, "samples": len(data),
        "command": cfg.command or "landscape.jobs.compare.compare", "options": json.dumps(_config(cfg)),
        "measures": json.dumps({name: definition(name, cfg) for name in cfg.measures}),
        **environment(), "mpi_ranks": comm.size, **cfg.provenance,
    }
    serial = SerialComm()

    def job(p: int, _needed) -> dict:
        j, k = divmod(int(p), K)
        model = minima[k].model
        if jobs[j] in EVALUATIONS:
            return _evaluate(model, splits[jobs[j]], cfg)
        r = _measure(jobs[j], model, data, cfg, serial)
        return {"value": r.value, "stderr": r.stderr, "error": np.nan, "converged": float(r.converged),
                "forward": r.forward, "backward": r.backward, "seconds": r.seconds}

    sizes = {s: len(d) for s, d in splits.items()}
    costs = [job_cost(jobs[p // K], cfg, sizes) for p in range(K * J)]

    def describe(p: int) -> str:
        j, k = divmod(int(p), K)
        return f"{_named(minima, k)}, {jobs[j]}"

    n_threads = choose_threads(cfg.threads, local_rank_and_size(comm)[1])  # once, for every computation below
    with using_threads(n_threads):
        if progress and comm.rank == 0 and (cfg.overwrite or not os.path.exists(out)):  # a new comparison
            points = (line.num if line and cfg.plot else 0) + (plane.num ** 2 if plane and cfg.plot else 0)
            _estimate(cfg, minima, data, costs, points, comm.size)
        surf = compute_points([np.arange(K, dtype=float), np.arange(J, dtype=float)], [_Job()], job, inputs=inputs,
                              attrs=attrs, output=Output(out, overwrite=cfg.overwrite,
                                                         progress="comparison table" if progress else False),
                              comm=comm, what="comparison", costs=costs, describe=describe, unit="jobs")
        surfaces = (_surfaces(cfg, minima, data, line, plane, comm, progress, n_threads) if cfg.plot
                    else {"1d": [], "2d": []})

    result = None
    if comm.rank == 0:
        rows, correlations = table(surf, minima, cfg)
        stored = read_surface(out)
        stored.attrs["kendall"] = json.dumps({c.measure: {"tau": c.tau, "p_value": c.p_value} for c in correlations})
        write_surface(out, stored)
        paths = [out, *_write_tables(folder, rows, correlations, cfg)]
        if cfg.plot:
            paths += _figures(folder, surfaces, correlations)
        computed = surf.computed + sum(s.computed or 0 for kind in surfaces.values() for s in kind)
        result = Comparison(tuple(rows), tuple(correlations), tuple(paths), computed)
    return on_root(comm, lambda: result)


def _surfaces(cfg: CompareConfig, minima: list[_Minimum], data, line, plane, comm, progress, threads: int) -> dict:
    """The 1D and 2D filter-normalized surfaces of every minimum (resumable files in ``surfaces/``)."""
    out: dict[str, list] = {"1d": [], "2d": []}
    for k, m in enumerate(minima):
        prov = {"model": m.path, "model_sha256": m.sha256, "arch": cfg.arch, **DataSpec.of(cfg).provenance(),
                "command": cfg.command or "landscape-compare",
                **{f"checkpoint_{key}": v for key, v in m.info.items()}}
        for kind, axes in (("1d", (line,)), ("2d", (plane, plane))):
            if axes[0] is None:
                continue
            path = os.path.join(os.path.abspath(cfg.out), "surfaces", f"minimum{k + 1}_{kind}.h5")
            label = f"{_named(minima, k)}, {'1D curve' if kind == '1d' else '2D contours'}" if progress else False
            out[kind].append(surface(
                m.model, {cfg.split: data}, Grid(axes[0], axes[1] if kind == "2d" else None),
                directions=Directions(norm="filter", ignore="biasbn", seed=cfg.seed),
                evaluation=EvalOptions(loss_fn=cfg.loss, batch_size=cfg.batch_size or 256, device=cfg.device,
                                       threads=threads),
                output=Output(path, overwrite=cfg.overwrite, progress=label, provenance=prov), comm=comm))
    return out


def table(surf, minima: list[_Minimum], cfg: CompareConfig) -> tuple[list[dict], list[sharpness.Correlation]]:
    """The rows of the comparison (one per checkpoint: per measure its value, standard error,
    whether it converged and what it is) and Kendall's tau of each measure against the gap, from
    the finished grid."""
    v, s, e, c = surf.values["value"], surf.values["stderr"], surf.values["error"], surf.values["converged"]
    settings = {name: _setting(definition(name, cfg)) for name in cfg.measures}
    rows = []
    for k, m in enumerate(minima):
        row = {"checkpoint": m.given, "title": m.title, "train_loss": v[0, k], "train_err": e[0, k],
               "test_loss": v[1, k], "test_err": e[1, k], "gap": e[1, k] - e[0, k], "loss_gap": v[1, k] - v[0, k]}
        for j, name in enumerate(cfg.measures, start=len(EVALUATIONS)):
            row[name] = v[j, k]
            row[f"{name}_stderr"] = s[j, k]
            row[f"{name}_converged"] = bool(c[j, k] == 1.0)
            row[f"{name}_setting"] = settings[name]
        rows.append({key: (float(x) if isinstance(x, float | np.floating) else x) for key, x in row.items()})
    gaps = [r["gap"] for r in rows]
    labels = [m.title or os.path.basename(m.path) for m in minima]
    correlations = []
    for name in cfg.measures:
        values = [r[name] for r in rows]
        if sum(np.isfinite(values)) >= 2 and len(set(gaps)) > 1 and len(set(values)) > 1:
            correlations.append(sharpness.kendall(name, values, gaps, [r[f"{name}_stderr"] for r in rows], labels))
    return rows, correlations


def _setting(d: dict[str, str]) -> str:
    return "; ".join(x for x in (d["scale"], d["perturbed"], d["radius"], d["units"], d["paper"]) if x)


def _fmt(x, full: bool = False) -> str:
    if isinstance(x, float):
        return "" if np.isnan(x) else (repr(x) if full else f"{x:.6g}")
    return str(x)


def _write_tables(folder: str, rows: list[dict], correlations, cfg: CompareConfig) -> list[str]:
    buf = io.StringIO()
    writer = csv.DictWriter(buf, fieldnames=list(rows[0]), lineterminator="\n")
    writer.writeheader()
    for r in rows:
        writer.writerow({k: _fmt(x, full=True) for k, x in r.items()})
    paths = [write_text(os.path.join(folder, "compare.csv"), buf.getvalue())]

    cols = ["#", "checkpoint", "train err %", "test err %", "gap %", *cfg.measures]
    lines = [f"# Comparison of {len(rows)} minima ({cfg.arch}, {cfg.dataset}, measures on {cfg.split})", "",
             "| " + " | ".join(cols) + " |", "|" + "---|" * len(cols)]
    unconverged = False
    for k, r in enumerate(rows):
        cells = [str(k + 1), f"{r['checkpoint']}: {r['title']}", _fmt(r["train_err"]),
                 _fmt(r["test_err"]), _fmt(r["gap"])]
        for name in cfg.measures:
            err = r[f"{name}_stderr"]
            mark = "" if r[f"{name}_converged"] else UNCONVERGED
            unconverged |= bool(mark)
            cells.append(_fmt(r[name]) + mark + (f" ± {err:.2g}" if np.isfinite(err) else ""))
        lines.append("| " + " | ".join(cells) + " |")
    if unconverged:
        lines += ["", f"{UNCONVERGED} not converged: an average case whose standard error is above {cfg.tol:g} of its "
                  f"value (more `--mc-samples`); a worst case whose best ascent was still rising when its "
                  f"{cfg.steps} steps ran out, or whose last of {cfg.restarts} restarts still found more (more "
                  "`--steps`, `--restarts`); a Hessian measure short of its tolerance."]
    lines += ["", "## What each column is", "", "| column | paper | perturbed | scale | radius | units |",
              "|---|---|---|---|---|---|"]
    for name in cfg.measures:
        d = definition(name, cfg)
        lines.append(f"| {name} | {d['paper']} | {d['perturbed']} | {d['scale']} | {d['radius']} | {d['units']} |")
    lines += ["", "## Kendall's tau of each measure against the gap (test error - train error)", "",
              "| measure | tau | p-value |", "|---|---|---|"]
    lines += [f"| {c.measure} | {c.tau:.3f} | {c.p_value:.3g} |" for c in correlations]
    warning = next((c.warning for c in correlations if c.warning), "")
    if warning:
        lines += ["", f"**Warning:** {warning}."]
    lines += ["", f"{cfg.mc_samples} Monte Carlo samples at most (stopping at a standard error of {cfg.tol:g} of the "
              f"value), {cfg.restarts} restarts of at most {cfg.steps} ascent steps, p = {cfg.p}"
              + (f", m = {cfg.m}" if cfg.m else "") + f"; seed {cfg.seed}.", ""]
    paths.append(write_text(os.path.join(folder, "compare.md"), "\n".join(lines)))
    return paths


def _figures(folder: str, surfaces: dict, correlations) -> list[str]:
    figures = []
    if surfaces["1d"]:
        figures.append(("curves_1d.png", compare_figure(surfaces["1d"])))
    if surfaces["2d"]:
        figures.append(("contours_2d.png", compare_figure(surfaces["2d"], kind="contour")))
    if correlations:
        figures.append(("gap_vs_measure.png", gap_figure(correlations)))
    paths = []
    for name, fig in figures:
        path = os.path.join(folder, name)
        with replacing(path) as tmp:
            fig.savefig(tmp, dpi=120, format="png")
        paths.append(path)
    return paths


__all__ = ["DEFAULT_MEASURES", "MEASURES", "CompareConfig", "Comparison", "compare", "definition", "table"]
