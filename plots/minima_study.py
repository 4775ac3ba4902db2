"""Does flatness predict the generalization gap? 15 minima of one network, each sharpness measure
ranked against the gap by Kendall's tau with its p-value.

    python plots/minima_study.py WORK                  # train, compare, WORK/study.json, WORK/study.md
    python plots/minima_study.py WORK --figures plots  # ... and plots/study_tau.png, plots/study_gap.png

The minima are ``digits_cnn`` networks on the built-in digits (scikit-learn's, nothing to
download), trained by ``landscape-train`` with SGD (Nesterov momentum 0.9, the step schedule) at
batch sizes 32, 128, 512 and the whole training set, from several seeds, with weight decay 0, 5e-4
and 5e-3, and with SAM (rho 0.05) and ASAM (rho 0.5): :data:`MINIMA`. ``landscape-compare`` then
measures all of them (every measure it has, at its defaults; the 1D and 2D figures are left out:
``--line none --plane none``), through its command line only, so the study reruns unchanged when
the measures' Python interface changes. Kendall's tau (tau-b, two-sided p-value,
:func:`scipy.stats.kendalltau`) of each measure is taken against the gap in error (test error -
train error, %) and in loss (test loss - train loss), from ``compare.csv``.

Every command is printed before it runs; every run is seeded and single-threaded, so a rerun gives
the same numbers. A finished training run or comparison in ``WORK`` is kept (rerun with a fresh
``WORK`` to start again). About 15 minutes on one core.
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import shlex
import shutil
import subprocess
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
RECIPE = ["--arch", "digits_cnn", "--dataset", "digits", "--optimizer", "sgd", "--no-progress", "--threads", "1"]
# name: (batch size, learning rate, epochs, weight decay, seed, more flags)
MINIMA = {
    "bs32_seed0": (32, 0.05, 15, 5e-4, 0, []),
    "bs32_seed1": (32, 0.05, 15, 5e-4, 1, []),
    "bs32_seed2": (32, 0.05, 15, 5e-4, 2, []),
    "bs32_wd0": (32, 0.05, 15, 0.0, 0, []),
    "bs32_wd5e-3": (32, 0.05, 15, 5e-3, 0, []),
    "bs128_seed0": (128, 0.1, 30, 5e-4, 0, []),
    "bs128_seed1": (128, 0.1, 30, 5e-4, 1, []),
    "bs512_seed0": (512, 0.4, 60, 5e-4, 0, []),
    "bs512_seed1": (512, 0.4, 60, 5e-4, 1, []),
    "bs512_wd0": (512, 0.4, 60, 0.0, 0, []),
    "bs1438": (1438, 1.0, 60, 5e-4, 0, []),
    "sam_bs32_seed0": (32, 0.05, 15, 5e-4, 0, ["--sam", "0.05"]),
    "sam_bs32_seed1": (32, 0.05, 15, 5e-4, 1, ["--sam", "0.05"]),
    "asam_bs32": (32, 0.05, 15, 5e-4, 0, ["--sam", "0.5", "--sam-adaptive"]),
    "sam_bs512": (512, 0.4, 60, 5e-4, 0, ["--sam", "0.05"]),
}
GAPS = {"gap": "test - train error (%)", "loss_gap": "test - train loss"}


COMMANDS = {"landscape-train": "landscape.cli.train", "landscape-compare": "landscape.cli.compare"}


def run(words: list[str]) -> None:
    """Print a command, then run it (one thread; by this Python, so an environment that is not
    activated works too), failing the study if it fails."""
    print("$ " + shlex.join(words), flush=True)
    env = dict(os.environ, OMP_NUM_THREADS="1")
    subprocess.run([sys.executable, "-m", COMMANDS[words[0]], *words[1:]], check=True, env=env)


def train_command(work: str, name: str, epoch_scale: float = 1.0) -> tuple[list[str], str]:
    """The ``landscape-train`` command of a minimum, and the checkpoint it ends with."""
    batch, lr, epochs, wd, seed, more = MINIMA[name]
    epochs = max(1, round(epochs * epoch_scale))
    out = os.path.join(work, name)
    words = ["landscape-train", *RECIPE, "--batch-size", str(batch), "--lr", str(lr), "--epochs", str(epochs),
             "--save-every", str(epochs), "--weight-decay", str(wd), "--seed", str(seed), *more, "--out", out,
             "--overwrite"]
    return words, os.path.join(out, f"model_{epochs}.pt")


def train_all(work: str, names=None, epoch_scale: float = 1.0) -> dict[str, str]:
    """Train the minima (``names``: a subset) unless their last checkpoint is there; their checkpoints."""
    checkpoints = {}
    for name in names or MINIMA:
        words, final = train_command(work, name, epoch_scale)
        if not os.path.isfile(final):
            run(words)
        checkpoints[name] = final
    return checkpoints


def compare_all(work: str, checkpoints: dict[str, str], extra: list[str] = ()) -> str:
    """``landscape-compare`` over the minima (its command line only); the folder it wrote."""
    out = os.path.join(work, "compare")
    run(["landscape-compare", *checkpoints.values(), "--arch", "digits_cnn", "--dataset", "digits", "--threads", "1",
         "--line", "none", "--plane", "none", *extra, "--out", out])
    return out


def read_table(folder: str, names: list[str]) -> tuple[list[dict], list[str]]:
    """The rows of ``compare.csv`` (numbers as floats) by minimum, and the measures (the columns
    that come with a standard error)."""
    with open(os.path.join(folder, "compare.csv"), newline="") as f:
        rows = list(csv.DictReader(f))
    measures = [c for c in rows[0] if f"{c}_stderr" in rows[0]]
    out = []
    for name, row in zip(names, rows, strict=True):
        out.append({"minimum": name, **{k: _value(v) for k, v in row.items() if k not in ("checkpoint", "title")}})
    return out, measures


def _value(text: str):
    """A cell of ``compare.csv``: a number (empty: NaN), a flag (``converged``) or text."""
    if text in ("", None):
        return float("nan")
    if text in ("True", "False"):
        return text == "True"
    try:
        return float(text)
    except ValueError:
        return text


def kendall(rows: list[dict], measures: list[str]) -> dict:
    """Kendall's tau-b of every measure against each gap, with its two-sided p-value."""
    import numpy as np
    from scipy.stats import kendalltau

    taus = {}
    for m in measures:
        taus[m] = {}
        for gap in GAPS:
            pairs = [(r[m], r[gap]) for r in rows if np.isfinite(r[m]) and np.isfinite(r[gap])]
            x, y = zip(*pairs, strict=True) if pairs else ((), ())
            result = kendalltau(x, y) if len(pairs) >= 3 else None
            ok = result is not None and np.isfinite(result.statistic)
            taus[m][gap] = {"tau": float(result.statistic) if ok else float("nan"),
                            "p_value": float(result.pvalue) if ok else float("nan"), "n": len(pairs)}
    return taus


def markdown(rows: list[dict], measures: list[str], taus: dict) -> str:
    """The study's two tables: the minima, and each measure's tau against each gap."""
    lines = ["| minimum | train err % | test err % | gap % | loss gap |", "|---|---:|---:|---:|---:|"]
    lines += [f"| {r['minimum']} | {r['train_err']:.2f} | {r['test_err']:.2f} | {r['gap']:.2f} | {r['loss_gap']:.4f} |"
              for r in rows]
    lines += ["", "| measure | tau (error gap) | p | tau (loss gap) | p |", "|---|---:|---:|---:|---:|"]
    for m in measures:
        e, loss = taus[m]["gap"], taus[m]["loss_gap"]
        lines.append(f"| {m} | {e['tau']:+.2f} | {e['p_value']:.2g} | {loss['tau']:+.2f} | {loss['p_value']:.2g} |")
    return "\n".join(lines) + "\n"


def tau_figure(taus: dict, n: int):
    """Each measure's tau against both gaps, bars marked with their p-values."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import numpy as np

    measures = list(taus)
    y = np.arange(len(measures))
    fig, ax = plt.subplots(figsize=(7.5, 0.45 * len(measures) + 1.4))
    for k, (gap, label) in enumerate(GAPS.items()):
        values = [taus[m][gap]["tau"] for m in measures]
        bars = ax.barh(y + (k - 0.5) * 0.38, values, height=0.36, label=f"against the {label}")
        for bar, m in zip(bars, measures, strict=True):
            p = taus[m][gap]["p_value"]
            x = bar.get_width()
            ax.text(x + (0.02 if x >= 0 else -0.02), bar.get_y() + bar.get_height() / 2, f"p={p:.2g}",
                    va="center", ha="left" if x >= 0 else "right", fontsize=7)
    ax.axvline(0, color="k", lw=0.8)
    ax.set_yticks(y, measures)
    ax.invert_yaxis()
    ax.set_xlim(-1.15, 1.15)
    ax.set_xlabel("Kendall's tau (> 0: the sharper minimum has the larger gap)")
    ax.set_title(f"{n} minima of digits_cnn: each measure against the generalization gap", fontsize=10)
    ax.legend(loc="upper center", bbox_to_anchor=(0.5, -0.13), ncol=2, fontsize=8, frameon=False)
    fig.tight_layout()
    return fig


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("work", help="folder for the runs, the comparison and study.json")
    p.add_argument("--figures", default=None, help="also draw study_tau.png and study_gap.png into this folder")
    a = p.parse_args(argv)
    os.makedirs(a.work, exist_ok=True)
    t0 = time.perf_counter()
    checkpoints = train_all(a.work)
    folder = compare_all(a.work, checkpoints)
    rows, measures = read_table(folder, list(checkpoints))
    taus = kendall(rows, measures)
    minima = {n: {"flags": train_command(a.work, n)[0][1:-3], **{k: v for k, v in r.items() if k != "minimum"}}
              for n, r in zip(checkpoints, rows, strict=True)}
    result = {"minima": minima, "kendall": taus, "seconds": round(time.perf_counter() - t0)}
    with open(os.path.join(a.work, "study.json"), "w") as f:
        json.dump(result, f, indent=1)  # the measures in landscape-compare's order
    text = markdown(rows, measures, taus)
    with open(os.path.join(a.work, "study.md"), "w") as f:
        f.write(text)
    print(text)
    if a.figures:
        fig = tau_figure(taus, len(rows))
        fig.savefig(os.path.join(a.figures, "study_tau.png"), dpi=100)
        shutil.copy(os.path.join(folder, "gap_vs_measure.png"), os.path.join(a.figures, "study_gap.png"))
    print(f"study: {len(rows)} minima, {len(measures)} measures, {result['seconds']} s; wrote "
          f"{os.path.join(a.work, 'study.json')}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
