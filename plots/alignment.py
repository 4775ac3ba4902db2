"""The gallery's permutation-alignment figures (plots/README.md), from what plots/make_gallery.sh made:

    python plots/alignment.py WORK      # make_gallery.sh's step 12, after landscape-align

* ``alignment_paths.png``: between the small-batch ``digits_cnn`` (``WORK/small/model_15.pt``) and the
  one from seed 1 (``WORK/seed1/model_15.pt``), train loss and test error along t of the straight
  line and the trained curve (``WORK/ab_path.h5``, step 10) and of the straight line after
  alignment (to ``WORK/seed1_aligned.pt``, written by ``landscape-align``; evaluated here as the
  path evaluation evaluates the line, BatchNorm statistics re-estimated at every t).
* ``alignment_width.png``: the straight line's barrier (train loss, above the chord) against
  width, for digits MLPs (two hidden layers of w units) and digits CNNs (``DigitsNet`` of width w:
  w, 2w, 2w channels, BatchNorm), each pair trained from seeds 0 and 1 by the demo's recipe (Adam,
  15 epochs): before alignment, after weight matching, after activation matching, and (MLPs,
  which have no BatchNorm) after weight matching with REPAIR.

Writes ``WORK/alignment.json``: every barrier, which ``plots/gallery_figures.py`` reads.
"""

from __future__ import annotations

import json
import os
import sys
import time

import numpy as np

HERE = os.path.dirname(os.path.abspath(__file__))
MLP_WIDTHS = (4, 16, 64, 256, 1024)
CNN_WIDTHS = (4, 8, 16, 32, 64)
EPOCHS = 15
POINTS = 21
COLORS = {"naive": "tab:gray", "weights": "tab:blue", "activations": "tab:orange", "weights+REPAIR": "tab:green"}
LABELS = {"naive": "not aligned", "weights": "weight matching", "activations": "activation matching",
          "weights+REPAIR": "weight matching + REPAIR"}


def _paths(work: str, train, test) -> dict:
    """The three paths between the gallery's two digits_cnn minima, and the figure."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from landscape import connect
    from landscape.engine.options import Output
    from landscape.io.surface_file import read_surface
    from landscape.jobs.network import load_model

    before = connect.path_result(read_surface(f"{work}/ab_path.h5"))
    a = load_model("digits_cnn", f"{work}/small/model_15.pt", num_classes=10, in_channels=1)
    b = load_model("digits_cnn", f"{work}/seed1_aligned.pt", num_classes=10, in_channels=1)
    after = connect.evaluate_path(connect.Curve.between(a, b), {"train": train, "test": test}, t=before.t,
                                  output=Output(f"{work}/aligned_path.h5", overwrite=True, progress=False))
    fig, (ax_loss, ax_err) = plt.subplots(1, 2, figsize=(10, 4), layout="constrained")
    series = (("straight line", before, "line", "tab:gray", "--"), ("straight line after alignment", after, "line",
              "tab:blue", "-"), ("trained curve", before, "curve", "tab:green", "-"))
    for label, result, path, color, ls in series:
        train_entry, test_entry = result.by_split["train"], result.by_split["test"]
        ax_loss.plot(result.t, train_entry["loss"][path], ls, color=color,
                     label=f"{label} (barrier {train_entry['barrier'][path]:.2g})")
        ax_err.plot(result.t, 100 - test_entry["acc"][path], ls, color=color,
                    label=f"{label} (barrier {test_entry['err_barrier'][path]:.2g} %)")
    ax_loss.set(xlabel="t", ylabel="train loss", yscale="log")
    ax_err.set(xlabel="t", ylabel="test error (%)")
    for ax in (ax_loss, ax_err):
        ax.legend(fontsize=8, frameon=False)
    fig.suptitle("two digits_cnn minima (small batch, seed 0 and seed 1): BatchNorm re-estimated at every t",
                 fontsize=9)
    fig.savefig(os.path.join(HERE, "alignment_paths.png"), dpi=100)
    plt.close(fig)
    out = {}
    for name, result, path in (("line", before, "line"), ("aligned", after, "line"), ("curve", before, "curve")):
        out[f"paths_{name}_barrier"] = result.by_split["train"]["barrier"][path]
        out[f"paths_{name}_chord_barrier"] = result.by_split["train"]["chord_barrier"][path]
        out[f"paths_{name}_err_barrier"] = result.by_split["test"]["err_barrier"][path]
    return out


def _sweep(train, test) -> dict:
    """Pairs of networks at each width: the line's barriers before and after alignment."""
    import torch

    from landscape import connect
    from landscape.jobs.demo import fit
    from landscape.models.tiny import MLP, DigitsNet

    out: dict = {}
    for family, widths, make in (("mlp", MLP_WIDTHS, lambda w: MLP(10, 1, 8, hidden=(w, w))),
                                 ("cnn", CNN_WIDTHS, lambda w: DigitsNet(10, 1, width=w))):
        for w in widths:
            t0 = time.perf_counter()
            ends = []
            for seed in (0, 1):
                torch.manual_seed(seed)
                ends.append(fit(make(w), train, seed, epochs=EPOCHS))
            a, b = ends
            models = {"naive": b, "weights": connect.align(a, b).model,
                      "activations": connect.align(a, b, "activations", data=train).model}
            for method, model in models.items():
                runs = [(method, False)] + ([("weights+REPAIR", True)] if method == "weights" and family == "mlp"
                                            else [])
                for name, repair in runs:
                    r = connect.evaluate_path(connect.Curve.between(a, model), {"train": train, "test": test},
                                              t=POINTS, repair_stats=repair)
                    key = f"{family}_{w}_{name}"
                    out[key] = {"barrier": r.by_split["train"]["barrier"]["line"],
                                "chord_barrier": r.by_split["train"]["chord_barrier"]["line"],
                                "err_barrier": r.by_split["test"]["err_barrier"]["line"],
                                "end_losses": [float(r.loss["line"][0]), float(r.loss["line"][-1])]}
            print(f"{family} width {w}: " + ", ".join(f"{k.split('_', 2)[2]} {v['chord_barrier']:.3g}"
                                                      for k, v in out.items() if k.startswith(f"{family}_{w}_"))
                  + f" ({time.perf_counter() - t0:.0f} s)", flush=True)
    return out


def _width_figure(sweep: dict) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from matplotlib.ticker import NullLocator

    fig, axes = plt.subplots(1, 2, figsize=(10, 4), layout="constrained", sharey=True)
    for ax, family, widths, title in ((axes[0], "mlp", MLP_WIDTHS, "digits MLP, two hidden layers of w"),
                                      (axes[1], "cnn", CNN_WIDTHS, "digits CNN (w, 2w, 2w channels, BatchNorm)")):
        for method, color in COLORS.items():
            values = [sweep.get(f"{family}_{w}_{method}", {}).get("chord_barrier") for w in widths]
            if any(v is not None for v in values):
                ax.plot(widths, values, "o-", color=color, label=LABELS[method])
        ax.set(xscale="log", yscale="log", xlabel="width w", title=title)
        ax.set_xticks(widths, [str(w) for w in widths])
        ax.xaxis.set_minor_locator(NullLocator())
        ax.legend(fontsize=8, frameon=False)
    axes[0].set_ylabel("train-loss barrier of the straight line\n(largest rise above the chord)")
    fig.savefig(os.path.join(HERE, "alignment_width.png"), dpi=100)
    plt.close(fig)


def main(argv: list[str] | None = None) -> int:
    import torch

    from landscape.data.datasets import load_dataset

    work = (argv if argv is not None else sys.argv[1:])[0]
    torch.set_num_threads(int(os.environ.get("OMP_NUM_THREADS", "1")))
    train, test = load_dataset("digits", split="train"), load_dataset("digits", split="test")
    t0 = time.perf_counter()
    out = _paths(work, train, test)
    sweep = _sweep(train, test)
    _width_figure(sweep)
    out["sweep"] = sweep
    out["seconds"] = round(time.perf_counter() - t0)
    with open(os.path.join(work, "alignment.json"), "w") as f:
        json.dump(out, f, indent=1, sort_keys=True)
    print(json.dumps({k: v for k, v in out.items() if k != "sweep"}, indent=1))
    return 0


def figures(work: str) -> dict:
    """The numbers plots/README.md states from ``WORK/alignment.json`` (for gallery_figures.py)."""
    with open(os.path.join(work, "alignment.json")) as f:
        data = json.load(f)
    out = {k: float(f"{v:.2g}") for k, v in data.items() if k.startswith("paths_") and "err" not in k}
    out.update({k: round(v, 1) for k, v in data.items() if k.startswith("paths_") and "err" in k})
    sweep = data["sweep"]
    for family, widths in (("mlp", MLP_WIDTHS), ("cnn", CNN_WIDTHS)):
        for w in widths:
            for method in COLORS:
                if f"{family}_{w}_{method}" in sweep:
                    out[f"align_{family}_{w}_{method.replace('+', '_')}"] = float(
                        f"{sweep[f'{family}_{w}_{method}']['chord_barrier']:.2g}")
    out["alignment_seconds"] = data["seconds"]
    return {k: v for k, v in out.items() if np.isfinite(v)}


if __name__ == "__main__":
    sys.exit(main())
