"""The figures plots/README.md states, read from what ``plots/make_gallery.sh`` just made.

    python plots/gallery_figures.py WORK SECONDS LOAD_BEFORE   # make_gallery.sh runs this last

Reads the checkpoints and files in ``WORK`` (test errors, split sizes, the interpolation's
barrier, the path's explained variance, the Hessian's figures, the pruned network's FLOPs, the
mode-connecting curve's and the straight line's barriers, the barriers before and after alignment,
the seven minima of one network, the 15 minima's Kendall's tau),
prints them, writes ``plots/gallery_figures.json`` and puts them into plots/README.md (a figure
there is the number written just before ``<!--fig:NAME-->``); ``tests/test_gallery_figures.py`` holds
plots/README.md to the JSON file.
"""

from __future__ import annotations

import json
import os
import sys
import time

import numpy as np

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "benchmarks"))

from _report import fill, machine  # noqa: E402  (the CPU and load wording of docs/benchmarks.md)


def _error(path: str) -> float:
    from landscape.io.checkpoint import read_checkpoint

    return round(read_checkpoint(path).summary()["test_error"], 2)


def _values(path: str, name: str) -> tuple[np.ndarray, np.ndarray]:
    from landscape.io.surface_file import read_surface

    s = read_surface(path)
    return s.x, s.values[name]


def figures(work: str) -> dict:
    import landscape as ls
    from landscape.hessian import read_summary

    out = {"digits_train": len(ls.load_dataset("digits", split="train")),
           "digits_test": len(ls.load_dataset("digits", split="test"))}
    out["small_error"] = _error(f"{work}/small/model_15.pt")
    out["large_error"] = _error(f"{work}/large/model_60.pt")
    x, train = _values(f"{work}/interp.h5", "train_loss")
    _, test = _values(f"{work}/interp.h5", "test_loss")
    _, bn_test = _values(f"{work}/interp_bn.h5", "test_loss")
    between = (x >= 0) & (x <= 1)
    ends = [int(np.argmin(abs(x - e))) for e in (0, 1)]
    out["interp_train_max"] = float(f"{train[between].max():.2g}")
    out["interp_test_max"] = float(f"{test[between].max():.2g}")
    out["interp_test_at_0"] = float(f"{test[ends[0]]:.2g}")
    out["interp_test_at_1"] = float(f"{test[ends[1]]:.2g}")
    out["interp_bn_test_max"] = float(f"{bn_test[between].max():.2g}")
    from landscape.io.trajectory_file import read_trajectory

    path = read_trajectory(f"{work}/path_pca.h5")
    out["path_checkpoints"] = len(path.xcoord)
    out["path_pc1"] = round(100 * float(path.explained_variance_ratio[0]), 1)
    out["path_pc2"] = round(100 * float(path.explained_variance_ratio[1]), 1)
    from landscape.io.surface_file import read_surface

    conv = read_surface(f"{work}/convexity.h5")
    ratio_map = np.abs(conv.values["min_eig"] / conv.values["max_eig"])
    out["convexity_max_eig_centre"] = float(f"{conv.values['max_eig'][7, 7]:.3g}")
    out["convexity_ratio_centre"] = float(f"{ratio_map[7, 7]:.2g}")
    out["convexity_ratio_max"] = float(f"{np.nanmax(ratio_map):.2g}")
    _, hs = read_summary(f"{work}/hessian.h5")
    out["hessian_max_eig"] = float(f"{hs.max_eig:.3g}")
    out["hessian_min_eig"] = float(f"{hs.min_eig:.3g}")
    out["hessian_trace"] = float(f"{hs.trace.estimate:.3g}")
    from landscape.jobs.network import load_model
    from landscape.prune import count

    flops = [count(load_model("digits_cnn", f"{work}/{m}.pt"), (1, 8, 8))[0] for m in ("small/model_15", "pruned")]
    out["pruned_flops_fewer"] = round(100 * (1 - flops[1] / flops[0]), 1)
    out["retrained_error"] = _error(f"{work}/retrained/model_5.pt")
    out["scratch_error"] = _error(f"{work}/scratch/model_15.pt")
    for m in ("fp", "bc", "sr"):
        out[f"quant_{m}_error"] = _error(f"{work}/{m}/model_40.pt")
    out.update(step_figures(work))
    out.update(connect_figures(work))
    out.update(sharpness_figures(work))
    out.update(alignment_figures(work))
    out.update(many_minima_figures(work))
    out.update(study_figures(work))
    return {k: v for k, v in out.items() if v is not None}


def connect_figures(work: str) -> dict:
    """The mode-connectivity step's figures: the second seed's test error, the barriers (train loss,
    test error) of the straight line and of the trained curve, and where the bend lies."""
    from landscape.io.surface_file import read_surface

    a = read_surface(f"{work}/ab_path.h5").attrs
    plane = read_surface(f"{work}/ab_plane.h5").attrs
    return {"seed1_error": _error(f"{work}/seed1/model_15.pt"),
            "connect_line_barrier": float(f"{a['barrier_line_train_loss']:.2g}"),
            "connect_curve_barrier": float(f"{a['barrier_curve_train_loss']:.2g}"),
            "connect_line_err_barrier": round(float(a["barrier_line_test_err"]), 1),
            "connect_curve_err_barrier": round(float(a["barrier_curve_test_err"]), 1),
            "connect_bend_y": round(float(plane["curve_bend_y"]), 2)}


def alignment_figures(work: str) -> dict:
    """The alignment step's figures, from ``WORK/alignment.json`` (written by plots/alignment.py)."""
    from alignment import figures as alignment  # plots/alignment.py, beside this script

    return alignment(work)


SHARP = ("avg_filter", "avg_elementwise", "avg_none", "worst_filter", "worst_elementwise", "worst_none", "epsilon",
         "lambda_max", "trace", "curvature")  # landscape-compare's measures, in its order


def step_figures(work: str) -> dict:
    """How long each numbered step of make_gallery.sh took (``stepN_seconds``), from the starts
    it wrote to ``WORK/steps.txt``."""
    try:
        with open(f"{work}/steps.txt") as f:
            starts = [(int(line.split()[0]), line.split()[1].rstrip(".")) for line in f if line.strip()]
    except OSError:
        return {}
    return {f"step{name}_seconds": later - start for (start, name), (later, _) in zip(starts, starts[1:], strict=False)
            if name.isdigit()}


def sharpness_figures(work: str) -> dict:
    """The sharpness step's figures: each minimum's gap and every measure (minima 1-3: small batch,
    large batch, seed 1), Kendall's tau of each measure against the gap, and how many measures
    rank the large-batch minimum (the largest gap) the sharpest, and the flattest."""
    import csv

    with open(f"{work}/compare/compare.csv") as f:
        rows = list(csv.DictReader(f))
    with open(f"{work}/compare/compare.md") as f:
        taus = {line.split("|")[1].strip(): float(line.split("|")[2])
                for line in f if line.startswith("| ") and line.count("|") == 4 and "tau" not in line}
    out = {f"sharp_tau_{m}": round(taus[m], 2) for m in SHARP if m in taus}
    for k, row in enumerate(rows, 1):
        out[f"sharp_{k}_gap"] = round(float(row["gap"]), 2)
        for m in SHARP:
            out[f"sharp_{k}_{m}"] = float(f"{float(row[m]):.3g}")
    values = {m: [float(row[m]) for row in rows] for m in SHARP}
    out["sharp_large_sharpest"] = sum(v[1] == max(v) for v in values.values())
    out["sharp_large_flattest"] = sum(v[1] == min(v) for v in values.values())
    return out


MANY = ("small", "large", "sam", "retrained", "bc", "kd", "lowrank")  # the order of step 12's table


def many_minima_figures(work: str) -> dict:
    """Step 12's figures: each of the seven minima's test error, gap, FLOPs and a few measures (the
    order of ``MANY``), the teacher's test error, and Kendall's tau of three measures."""
    import csv

    from landscape.jobs.network import ModelSpec
    from landscape.jobs.prune import CountConfig, count_checkpoint

    folder = f"{work}/many"
    with open(f"{folder}/compare/compare.csv") as f:
        rows = list(csv.DictReader(f))
    out = {"many_teacher_error": _error(f"{folder}/teacher/model_30.pt")}
    for name, row in zip(MANY, rows, strict=True):
        out[f"many_{name}_error"] = round(float(row["test_err"]), 2)
        out[f"many_{name}_gap"] = round(float(row["gap"]), 2)
        for m in SHARP:
            out[f"many_{name}_{m}"] = float(f"{float(row[m]):.3g}")
        out[f"many_{name}_flops"] = count_checkpoint(CountConfig(ModelSpec("digits_cnn", row["checkpoint"]),
                                                              input_shape=(1, 8, 8))).flops
    value = {name: row for name, row in zip(MANY, rows, strict=True)}
    out["many_sam_flatter"] = sum(float(value["sam"][m]) < float(value["small"][m]) for m in SHARP)
    out["many_kd_flattest"] = sum(float(value["kd"][m]) == min(float(r[m]) for r in rows) for m in SHARP)
    out["many_lowrank_flops_fewer"] = round(100 * (1 - out["many_lowrank_flops"] / out["many_small_flops"]), 1)
    from landscape.data.datasets import load_dataset
    from landscape.evaluation.evaluator import Evaluator
    from landscape.evaluation.options import EvalOptions
    from landscape.jobs.network import load_model

    factorized = load_model("digits_cnn", f"{folder}/lowrank.pt")  # before retraining
    accuracy = Evaluator(factorized, load_dataset("digits", split="test"), EvalOptions(batch_size=512, device="cpu"))()
    out["many_lowrank_untrained_error"] = round(100.0 - accuracy["acc"], 2)
    return out


def study_figures(work: str) -> dict:
    """Step 13's figures (``plots/minima_study.py``): the number of minima, each measure's tau and
    p-value against the error gap and the loss gap, and the range of the gaps."""
    with open(f"{work}/study/study.json") as f:
        study = json.load(f)
    out = {"study_minima": len(study["minima"])}
    gaps = [m["gap"] for m in study["minima"].values()]
    out["study_gap_min"], out["study_gap_max"] = round(min(gaps), 2), round(max(gaps), 2)
    out["study_train_err_max"] = round(max(m["train_err"] for m in study["minima"].values()), 2)
    for name, m in study["minima"].items():
        key = name.replace("-", "_")
        out[f"study_{key}_gap"] = round(m["gap"], 2)
        for measure in ("avg_filter", "lambda_max", "curvature"):
            if measure in m:
                out[f"study_{key}_{measure}"] = float(f"{m[measure]:.3g}")
    for measure, by_gap in study["kendall"].items():
        for gap, short in (("gap", "err"), ("loss_gap", "loss")):
            out[f"study_tau_{short}_{measure}"] = round(by_gap[gap]["tau"], 2)
            out[f"study_p_{short}_{measure}"] = round(float(f"{by_gap[gap]['p_value']:.2g}"), 4)
    kendall = study["kendall"].values()
    tests = 2 * len(study["kendall"])  # every measure against both gaps
    out["study_err_negative"] = sum(k["gap"]["tau"] < 0 for k in kendall)
    out["study_err_below_005"] = sum(k["gap"]["p_value"] < 0.05 for k in kendall)
    out["study_loss_positive"] = sum(k["loss_gap"]["tau"] > 0 for k in kendall)
    out["study_loss_below_005"] = sum(k["loss_gap"]["p_value"] < 0.05 for k in kendall)
    out["study_bonferroni"] = sum(k[g]["p_value"] < 0.05 / tests for k in kendall for g in ("gap", "loss_gap"))
    out["study_tests"] = tests
    return out


def main(argv: list[str] | None = None) -> int:
    work, seconds, load_before = (argv if argv is not None else sys.argv[1:])[:3]
    out = {**machine(), **figures(work), "load_before": float(load_before), "gallery_seconds": round(float(seconds)),
           "load_after": round(os.getloadavg()[0], 2), "measured": time.strftime("%Y-%m-%d")}
    with open(os.path.join(HERE, "gallery_figures.json"), "w") as f:
        json.dump(out, f, indent=1, sort_keys=True)
        f.write("\n")
    for k, v in sorted(out.items()):
        print(f"{k}: {v}")
    missing = fill(os.path.join(HERE, "README.md"), out)
    print("plots/README.md updated" + (f"; not measured: {', '.join(missing)}" if missing else ""))
    return 0


if __name__ == "__main__":
    sys.exit(main())
