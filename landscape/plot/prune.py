"""Figures of filter pruning (Li et al., ICLR'17, Fig. 2): sorted filter norms and sensitivity.

Each drawing function takes a matplotlib ``ax`` and returns the artists it drew; :func:`pruning_figures`
makes the two standard figures as :class:`matplotlib.figure.Figure` (no pyplot, no global state).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np
from matplotlib.axes import Axes
from matplotlib.figure import Figure

MARKERS = ("o", "s", "^", "v", "D", "x", "+", "*", "p", "h", "<", ">")
STYLES = ("-", "--", "-.", ":")
PER_LAYER_LEGEND = 16  # more layers than this: one legend entry per stage


def _colours(n: int) -> list:
    from matplotlib import colormaps

    cmap = colormaps["tab10"]
    return [cmap(i % 10) for i in range(max(n, 1))]


def _many_colours(n: int) -> list:
    from matplotlib import colormaps

    cmap = colormaps["tab20"]
    return [cmap(i % 20) for i in range(max(n, 1))]


def _styles(stages: Sequence[int]) -> list[dict]:
    """Per curve: its own colour and marker when the legend names every curve (up to
    ``PER_LAYER_LEGEND``); beyond, the colour of its stage, and a marker and line style that vary
    within a stage."""
    if len(stages) <= PER_LAYER_LEGEND:
        colours = _colours(len(stages)) if len(stages) <= 10 else _many_colours(len(stages))
        return [{"color": colours[k], "marker": MARKERS[k % len(MARKERS)], "linestyle": "-"}
                for k in range(len(stages))]
    order = sorted(set(stages))
    colours = _colours(len(order))
    seen: dict[int, int] = {}
    out = []
    for s in stages:
        k = seen.get(s, 0)
        seen[s] = k + 1
        out.append({"color": colours[order.index(s)], "marker": MARKERS[k % len(MARKERS)],
                    "linestyle": STYLES[(k // len(MARKERS)) % len(STYLES)]})
    return out


def _legend(ax: Axes, lines: list, labels: Sequence[str], stages: Sequence[int], extra: Sequence = ()) -> None:
    """Every curve by name (or, beyond ``PER_LAYER_LEGEND``, one entry per stage), then ``extra``
    artists (the unpruned baseline)."""
    if len(lines) <= PER_LAYER_LEGEND:
        entries = list(zip(lines, labels, strict=True))
    else:
        firsts = {}
        for line, label, s in zip(lines, labels, stages, strict=True):
            firsts.setdefault(s, (line, label))
        entries = [(firsts[s][0], f"stage {s + 1} ({sum(1 for t in stages if t == s)} layers)")
                   for s in sorted(firsts)]
    entries += [(a, a.get_label()) for a in extra]
    ax.legend([e[0] for e in entries], [e[1] for e in entries], fontsize=7 if len(entries) > 8 else 8,
              ncol=2 if len(entries) > 8 else 1)


def sensitivity_curves(ax: Axes, result, quantity: str = "accuracy", legend: bool = True) -> list:
    """Accuracy (or ``quantity="loss"``) against the percentage of filters pruned away, one curve
    per layer, coloured by stage, with the unpruned baseline as a dotted line (Fig. 2(b)).
    Points not computed yet are left out. Returns the curves (and the baseline line last)."""
    values = np.asarray(result.accuracy if quantity == "accuracy" else result.loss, dtype=float)
    ratios = 100.0 * np.asarray(result.ratios, dtype=float)
    stages = list(result.stages) if len(result.stages) == len(result.layers) else [0] * len(result.layers)
    lines = []
    for name, row, style in zip(result.layers, values, _styles(stages), strict=True):
        ok = np.isfinite(row)
        (line,) = ax.plot(ratios[ok], row[ok], lw=1.2, ms=4, label=name, **style)
        lines.append(line)
    base = result.baseline_accuracy if quantity == "accuracy" else result.baseline_loss
    baseline = []
    if np.isfinite(base):
        text = f"unpruned ({base:.2f} %)" if quantity == "accuracy" else f"unpruned ({base:.4g})"
        baseline = [ax.axhline(base, color="0.2", lw=1.2, ls=":", label=text)]
        lines += baseline
    ax.set_xlabel("filters pruned away (%)")
    ax.set_ylabel("accuracy (%)" if quantity == "accuracy" else "loss")
    if legend and result.layers:
        _legend(ax, lines[:len(result.layers)], list(result.layers), stages, baseline)
    ax.grid(alpha=0.3)
    return lines


def norm_curves(ax: Axes, norms: Mapping[str, np.ndarray], stages: Sequence[int] | None = None,
                 legend: bool = True) -> list:
    """Each conv layer's filter L1 norms, sorted and divided by the largest, against the filter's
    rank as a fraction of the layer's filters (Fig. 2(a)). ``norms``: the ``{layer: norms}`` of
    :func:`landscape.prune.filter_norms`. Colours group layers by ``stages`` (default: by number of
    filters). Returns the curves."""
    names = list(norms)
    if stages is None:
        widths = sorted({len(v) for v in norms.values()})
        stages = [widths.index(len(norms[n])) for n in names]
    lines = []
    for name, style in zip(names, _styles(list(stages)), strict=True):
        v = np.asarray(norms[name], dtype=float)
        x = (np.arange(len(v)) + 1) / len(v)
        style = dict(style, markevery=max(1, len(v) // 8))
        (line,) = ax.plot(x, v, lw=1.2, ms=3, label=name, **style)
        lines.append(line)
    ax.set_xlabel("filter rank / number of filters")
    ax.set_ylabel("sum of |filter weights| (normalized)")
    if legend and names:
        _legend(ax, lines, names, list(stages))
    ax.grid(alpha=0.3)
    return lines


def pruning_figures(result=None, norms: Mapping[str, np.ndarray] | None = None, name: str = "",
            data: str = "") -> dict[str, Figure]:
    """``{"sensitivity": Figure}`` for a sensitivity result and ``{"filter_norms": Figure}`` for the
    ``{layer: norms}`` of :func:`landscape.prune.filter_norms`; ``name`` (the architecture) and
    ``data`` (e.g. ``"cifar10 test"``) go in the titles."""
    out = {}
    if result is not None:
        fig = Figure(figsize=(6.5, 4.5), layout="constrained")
        ax = fig.subplots()
        sensitivity_curves(ax, result)
        ax.set_title(" | ".join(t for t in (name, data, "one layer pruned at a time, not retrained") if t),
                     fontsize=9)
        out["sensitivity"] = fig
    if norms is not None:
        fig = Figure(figsize=(6.5, 4.5), layout="constrained")
        ax = fig.subplots()
        stages = list(result.stages) if result is not None and len(result.stages) == len(norms) else None
        norm_curves(ax, norms, stages)
        ax.set_title(" | ".join(t for t in (name, "filters ranked by L1 norm") if t), fontsize=9)
        out["filter_norms"] = fig
    return out


__all__ = ["norm_curves", "pruning_figures", "sensitivity_curves"]
