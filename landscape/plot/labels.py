"""What a surface's axes are, in words, from the provenance its file records: ``filter-normalized
direction 1 (seed 0)``, ``PCA component 1 (62 % of variance)``, ``from small/model_15.pt (0) to
large/model_60.pt (1)``, ``along b - a``. A file that records nothing (the original tool's) gets
``direction 1``, ``direction 2``."""

from __future__ import annotations

from landscape.io.surface_file import Surface

NORM_WORDS = {"filter": "filter-normalized", "layer": "layer-normalized", "weight": "weight-normalized",
              "dfilter": "unit-filter", "dlayer": "unit-layer", "none": "unnormalized"}
CURVE_PLANE = "curve plane (a, b, bend)"


def short_path(path: object) -> str:
    """The last two parts of a path (``small/model_15.pt``): enough to tell checkpoints apart."""
    parts = [p for p in str(path or "").replace("\\", "/").split("/") if p]
    return "/".join(parts[-2:])


def _ratios(text: object) -> list[float]:
    try:
        return [float(t) for t in str(text or "").split(",") if t.strip()]
    except ValueError:
        return []


def axis_labels(surface: Surface) -> list[str]:
    """One label per axis of ``surface`` (x first), saying which direction it is."""
    a = surface.attrs
    source = str(a.get("directions_from") or "")
    same = source.endswith("; y = x")
    source = source.removesuffix("; y = x")
    norms = [n for n in str(a.get("norm") or "").split(",") if n]
    seed = a.get("seed")
    seed_text = f" (seed {seed})" if str(seed) not in ("", "None") else ""
    variance = _ratios(a.get("explained_variance_ratio"))
    out = []
    for k in range(surface.ndim):
        norm = norms[min(k, len(norms) - 1)] if norms else ""
        if source == CURVE_PLANE:
            label = "along b - a (a at 0, b at 1)" if k == 0 else "towards the bend (the curve's control point)"
        elif source == "model2" and k == 0:
            label = f"from {short_path(a.get('model')) or 'model'} (0) to {short_path(a.get('model2')) or 'model2'} (1)"
        elif source == "model2, model3" and k < 2:
            label = f"towards {short_path(a.get('model2' if k == 0 else 'model3')) or 'model' + str(k + 2)} (at 1)"
        elif same and k == 1:
            label = "the x direction again (y = x)"
        elif source == "file" and norm == "pca":
            share = f" ({100 * variance[k]:.0f} % of variance)" if k < len(variance) else ""
            label = f"PCA component {k + 1}{share}"
        elif source == "file":
            name = short_path(a.get("directions_file"))
            label = f"direction {k + 1} of {name}" if name else f"direction {k + 1}"
        elif norm in NORM_WORDS:
            label = f"{NORM_WORDS[norm]} direction {k + 1}{seed_text}"
        else:
            label = f"direction {k + 1}"
        out.append(label)
    return out


__all__ = ["axis_labels", "short_path"]
