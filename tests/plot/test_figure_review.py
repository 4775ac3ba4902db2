"""What a reviewer found in the figures (issue 31, part 6), each checked on the artists or the pixels:
round contour levels with labels apart, axes named after their directions, coarse grids drawn as
far as they resolve, unfinished files said so, visible evaluated points, values beyond --vmax in
the colour bar's extension, a named sharpness scatter, 1D comparisons that tell minima apart, an
unbroken Hessian density, the Bezier bend called the control point, a shared plotly.js."""

from __future__ import annotations

import os
import re
from itertools import combinations

import h5py
import numpy as np
import pytest
from helpers import assert_round_levels, make_surface
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.collections import LineCollection
from matplotlib.colors import to_rgba
from matplotlib.figure import Figure
from scipy.spatial import cKDTree

from landscape.cli import plot as plot_cli
from landscape.connect.plane import PlanePath
from landscape.io.surface_file import write_surface
from landscape.plot import mpl, render
from landscape.plot.compare import compare_figure
from landscape.plot.connect import plane_figure
from landscape.plot.interactive import write_html
from landscape.plot.labels import axis_labels
from landscape.plot.sharpness import gap_figure
from landscape.plot.style import Style


def basin(n: int = 31, attrs: dict | None = None):
    """A loss like the demo's: 0.007 at the minimum, about 40 at the corners (3.8 decades)."""
    x = y = np.linspace(-1, 1, n)
    r2 = x[None, :] ** 2 + y[:, None] ** 2 * 1.3
    loss = 0.007 + 4 * r2 + 8 * r2**2
    return make_surface([x, y], {"train_loss": loss, "train_acc": 100 - 2 * loss},
                        {"split": "train", **(attrs or {})})


def main_set(ax):
    (cs,) = [c for c in ax.collections if hasattr(c, "levels") and c.get_gid() != "extension"]
    return cs


def pixels(fig: Figure) -> tuple[np.ndarray, FigureCanvasAgg]:
    canvas = FigureCanvasAgg(fig)
    canvas.draw()
    return np.asarray(canvas.buffer_rgba())[..., :3], canvas


def pixel_at(fig: Figure, img: np.ndarray, ax, x: float, y: float) -> np.ndarray:
    px, py = ax.transData.transform((x, y))
    return img[int(round(img.shape[0] - py)), int(round(px))]


def is_white(rgb) -> bool:
    return bool(np.min(rgb) >= 250)


# --------------------------------------------------------------------- contour levels and labels


def test_contour_levels_are_round_and_their_labels_stand_apart():
    s = basin()
    fig = render.figures(s, kinds=["contour"])["contour"]
    ax = fig.axes[0]
    cs = main_set(ax)
    assert_round_levels(cs.levels, np.nanmin(s.loss), np.nanmax(s.loss), 30, log=True)
    texts = [t for t in ax.texts if t.get_text() and not t.get_text().startswith("min")]
    assert len(texts) >= 4
    for t in texts:  # each label is a level, written short: 0.05, 2, 10
        value = float(t.get_text())
        assert any(np.isclose(value, lv) for lv in cs.levels), t.get_text()
        assert len(t.get_text().replace("0.", "").lstrip("0")) <= 2, t.get_text()
    img, canvas = pixels(fig)
    renderer = canvas.get_renderer()
    boxes = [t.get_window_extent(renderer) for t in texts]
    for a, b in combinations(boxes, 2):
        assert not a.overlaps(b)
    x0, x1 = ax.get_xlim()
    unit = x1 - x0
    centres = np.array([t.get_position() for t in texts])
    gaps = np.hypot(*(centres[:, None, :] - centres[None, :, :]).transpose(2, 0, 1))
    assert gaps[np.triu_indices(len(texts), 1)].min() >= mpl.LABEL_GAP * unit * 0.999
    # no other contour line runs through a label (the crowd of lines around the minimum)
    for t, centre in zip(texts, centres, strict=True):
        value = float(t.get_text())
        others = np.vstack([mpl._polylines(p, 0.002 * unit) for lv, p in zip(cs.levels, cs.get_paths(), strict=True)
                            if len(p.vertices) and not np.isclose(lv, value)])
        assert cKDTree(others).query(centre)[0] >= mpl.LABEL_CLEAR * unit * 0.95, t.get_text()


def test_levels_are_round_on_a_linear_scale_and_with_limits():
    s = basin()
    cs = main_set(render.figures(s, Style(levels=12, scale="linear", vmin=0.5, vmax=30),
                                 kinds=["contour"])["contour"].axes[0])
    assert (cs.norm.vmin, cs.norm.vmax) == pytest.approx((0.5, 30))  # the colours span the limits asked for
    assert_round_levels(cs.levels, 0.5, 30, 12)


# ------------------------------------------------------------------------------- axis labels


def test_axes_say_which_directions_they_are():
    random = render.figures(basin(attrs={"norm": "filter", "seed": 3}), kinds=["contour"])["contour"].axes[0]
    assert random.get_xlabel() == "filter-normalized direction 1 (seed 3)"
    assert random.get_ylabel() == "filter-normalized direction 2 (seed 3)"
    pca = basin(attrs={"norm": "pca", "directions_from": "file", "explained_variance_ratio": "0.62,0.21"})
    ax = render.figures(pca, kinds=["heatmap"])["heatmap"].axes[0]
    assert (ax.get_xlabel(), ax.get_ylabel()) == ("PCA component 1 (62 % of variance)",
                                                  "PCA component 2 (21 % of variance)")
    x = np.linspace(-0.5, 1.5, 21)
    line = make_surface([x], {"train_loss": 0.1 + (x - 0.5) ** 2}, {
        "split": "train", "directions_from": "model2", "model": "/runs/small/model_15.pt",
        "model2": "/runs/large/model_60.pt"})
    ax = render.figures(line)["1d"].axes[0]
    assert ax.get_xlabel() == "from small/model_15.pt (0) to large/model_60.pt (1)"
    mixed = basin(attrs={"norm": "filter,layer", "seed": 0, "directions_from": "random; y = x"})
    assert axis_labels(mixed) == ["filter-normalized direction 1 (seed 0)", "the x direction again (y = x)"]


def test_landscape_plot_labels_pca_axes_from_the_directions_file(tmp_path, monkeypatch, capsys):
    dirs = tmp_path / "path_pca.h5"
    with h5py.File(dirs, "w") as f:
        f["explained_variance_ratio"] = np.array([0.835, 0.1])
    s = basin(attrs={"norm": "pca", "directions_from": "file", "directions_file": str(dirs)})
    write_surface(tmp_path / "s.h5", s)
    saved = {}
    monkeypatch.setattr(render, "save_figure", lambda fig, prefix, name, formats, dpi=150: saved.update({name: fig})
                        or [f"{prefix}_{name}.png"])
    assert plot_cli.main([str(tmp_path / "s.h5"), "--kinds", "contour", "--formats", "png"]) == 0, \
        capsys.readouterr().err
    ax = saved["contour"].axes[0]
    assert ax.get_xlabel() == "PCA component 1 (84 % of variance)"
    assert ax.get_ylabel() == "PCA component 2 (10 % of variance)"


# ------------------------------------------------------------------------------- coarse grids


def test_a_coarse_grid_has_no_white_hole_and_its_colour_bar_lists_the_levels_drawn():
    s = basin(9)
    fig = render.figures(s, kinds=["contour"])["contour"]
    ax = fig.axes[0]
    cs = main_set(ax)
    bar = ax.child_axes[0]
    floor = mpl.resolved_floor(s, "loss")
    assert cs.norm.vmin == pytest.approx(floor)  # the colours start at what the grid resolves
    assert all(len(p.vertices) for p in cs.get_paths())  # every level listed is drawn
    (bar_lines,) = [c for c in bar.collections if isinstance(c, LineCollection) and len(c.get_segments())]
    drawn_on_bar = sorted(seg[0][1] for seg in bar_lines.get_segments())
    np.testing.assert_allclose(drawn_on_bar, cs.levels, rtol=1e-3)  # the bar's lines: the levels, only those
    img, _ = pixels(fig)
    assert not is_white(pixel_at(fig, img, ax, 0.0, 0.05))  # the minimum's cell is painted, not a hole
    assert any("min 0.007" in t.get_text() for t in ax.texts)  # and its value written


# ----------------------------------------------------------------------- unfinished files


def unfinished():
    s = basin(9)
    for name in s.values:
        s.values[name][0, :5] = np.nan  # five points not computed yet
        s.done[name][0, :5] = False
    s.values["train_loss"][8, 8] = np.inf  # one computed, and overflowed
    return s


def test_points_not_computed_are_told_from_points_not_finite():
    fig = render.figures(unfinished(), kinds=["contourf"])["contourf"]
    legend = [t.get_text() for t in fig.axes[0].get_legend().get_texts()]
    assert legend == ["not computed (5 points)", "not finite (1 point)"]


def test_landscape_plot_says_a_file_is_incomplete_in_one_line(tmp_path, capsys):
    path = tmp_path / "s.h5"
    write_surface(path, unfinished())
    assert plot_cli.main([str(path), "--kinds", "contour", "--formats", "png"]) == 0
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("landscape-plot: warning:")
    assert "incomplete" in err[0] and "5 of 81 points are not computed" in err[0]
    write_surface(path, basin(9))
    assert plot_cli.main([str(path), "--kinds", "contour", "--formats", "png"]) == 0
    assert not capsys.readouterr().err  # a finished file: no warning


# --------------------------------------------------------------------------- evaluated points


def test_evaluated_points_are_visible_and_in_the_legend():
    s = basin(17)
    mask = np.zeros(s.shape, np.uint8)
    mask[::4, ::4] = 1
    s.arrays["evaluated"] = mask
    ax = render.figures(s, Style(mark_evaluated=True), kinds=["contour"])["contour"].axes[0]
    (dots,) = [c for c in ax.collections if c.get_label().startswith("evaluated")]
    assert len(dots.get_offsets()) == 25 and min(dots.get_sizes()) >= 10  # points, not 1-pixel specks
    assert to_rgba(dots.get_edgecolor()[0]) == to_rgba("white")  # visible on dark colours too
    assert [t.get_text() for t in ax.get_legend().get_texts()] == [
        "evaluated (25 of 289 points; the rest interpolated)"]


# ---------------------------------------------------------------------- beyond --vmax


@pytest.mark.parametrize("kind", ["contour", "contourf", "heatmap"])
def test_values_above_vmax_take_the_colour_bars_extension(kind):
    s = basin()
    fig = render.figures(s, Style(vmax=5.0), kinds=[kind])[kind]
    ax = fig.axes[0]
    bar = ax.child_axes[0]
    img, _ = pixels(fig)
    corner = pixel_at(fig, img, ax, 0.93, 0.93)  # loss about 40 there: above 5
    assert not is_white(corner)
    top = bar.transAxes.transform((0.5, 1.0))  # the colour bar's upper extension (its triangle) is drawn
    tip = img[int(round(img.shape[0] - top[1])) - 4, int(round(top[0]))]
    assert not is_white(tip)
    over = np.asarray(to_rgba(main_set(ax).cmap.get_over() if kind != "heatmap" else
                              ax.collections[0].cmap.get_over()))[:3] * 255
    if kind == "contour":  # lines alone: the region tinted with the extension's colour, lightly
        assert np.all(corner <= 255) and np.argmax(corner) == np.argmax(over) and corner[2] < 250
    else:
        assert np.allclose(corner, over, atol=3)


# ------------------------------------------------------------------------ sharpness scatter


class _Correlation:  # duck-typed sharpness.Correlation: the plot imports no torch
    def __init__(self, measure, labels):
        self.measure, self.labels = measure, tuple(labels)
        self.values, self.gaps, self.stderrs = (1.0, 2.0, 3.0), (0.8, 1.7, 0.3), ()
        self.tau, self.p_value, self.warning = -0.33, 1.0, ""


def test_the_sharpness_scatter_names_its_minima_in_a_legend():
    names = ["digits_cnn, SGD, bs=32, wd=0.0005, seed 0, test err 0.84 %",
             "digits_cnn, SGD, bs=1438, wd=0.0005, seed 0, test err 1.67 %",
             "digits_cnn, SGD, bs=32, wd=0.0005, seed 1, test err 0.28 %"]
    fig = gap_figure([_Correlation("avg_filter", names), _Correlation("trace", names)])
    (legend,) = fig.legends
    assert [t.get_text() for t in legend.get_texts()] == [f"{k + 1}: {n}" for k, n in enumerate(names)]
    numbers = sorted(t.get_text() for t in fig.axes[0].texts)
    assert numbers == ["1", "2", "3"]  # the points carry the legend's numbers
    colours = [to_rgba(h.get_color()) for h in legend.legend_handles]
    assert colours == [to_rgba(c) for c in fig.axes[0].collections[0].get_facecolors()]


# ------------------------------------------------------------------------- 1D comparisons


def line(scale: float, attrs: dict):
    x = np.linspace(-1, 1, 41)
    loss = 0.005 + scale * x**2 + 40 * x**4
    return make_surface([x], {"train_loss": loss, "train_acc": 100 - loss}, {
        "split": "train", "arch": "digits_cnn", "checkpoint_optimizer": "sgd", "checkpoint_batch_size": 32, **attrs})


def test_the_1d_comparison_tells_two_minima_of_one_recipe_apart_on_a_log_axis():
    a = line(1.0, {"checkpoint_seed": 0, "model": "/r/seed0/model_15.pt"})
    b = line(3.0, {"checkpoint_seed": 1, "model": "/r/seed1/model_15.pt"})
    fig = compare_figure([a, b])
    ax = fig.axes[0]
    labels = [t.get_text() for t in ax.get_legend().get_texts()]
    assert labels == ["digits_cnn, SGD, bs=32, seed 0", "digits_cnn, SGD, bs=32, seed 1"]
    assert ax.get_yscale() == "log"  # the bottom of the basins, where they differ, is not flattened
    assert ax.get_ylim()[0] <= 0.005 * 1.01
    same_seed = [line(1.0, {"model": "/r/a/model_15.pt"}), line(3.0, {"model": "/r/b/model_15.pt"})]
    labels = [t.get_text() for t in compare_figure(same_seed).axes[0].get_legend().get_texts()]
    assert labels == ["digits_cnn, SGD, bs=32 (a/model_15.pt)", "digits_cnn, SGD, bs=32 (b/model_15.pt)"]
    assert compare_figure([a, b], Style(scale="linear")).axes[0].get_yscale() == "linear"


# --------------------------------------------------------------------------- the plane


def plane(kind: str) -> PlanePath:
    t = np.linspace(0, 1, 51)
    bend = (0.5, 0.8)
    if kind == "bezier":  # (1-t)^2 a + 2t(1-t) bend + t^2 b: passes at half the bend's height
        x, y = 2 * t * (1 - t) * bend[0] + t**2, 2 * t * (1 - t) * bend[1]
    else:
        x = np.where(t < 0.5, 2 * t * bend[0], bend[0] + (2 * t - 1) * (1 - bend[0]))
        y = np.where(t < 0.5, 2 * t * bend[1], (2 - 2 * t) * bend[1])
    return PlanePath(t, x, y, (0.0, 0.0), (1.0, 0.0), bend, kind)


def test_the_plane_says_a_bezier_bend_is_the_control_point_not_on_the_curve():
    x = np.linspace(-0.2, 1.2, 15)
    y = np.linspace(-0.2, 1.0, 13)
    s = make_surface([x, y], {"train_loss": 0.01 + (y[:, None] - 0.4) ** 2 + 0 * x[None, :]},
                     {"split": "train", "directions_from": "curve plane (a, b, bend)"})
    fig = plane_figure(s, plane("bezier"))
    ax = fig.axes[0]
    texts = {t.get_text() for t in ax.texts}
    assert "control point (not on the curve)" in texts and "bend" not in texts
    legend = [t.get_text() for t in ax.get_legend().get_texts()]
    assert "control point (not on the curve): the trained parameter" in legend
    (marker,) = [ln for ln in ax.get_lines() if ln.get_label().startswith("control point")]
    assert marker.get_markerfacecolor() == "none"  # hollow: not a point the curve passes
    chain = plane_figure(s, plane("polychain")).axes[0]
    assert "bend" in {t.get_text() for t in chain.texts}  # a polygonal chain does pass through its bend


# --------------------------------------------------------------------------- HTML pages


def test_html_pages_can_share_one_plotly_script_beside_them(tmp_path):
    s = basin(41)
    inline = write_html(s, tmp_path / "inline.html")
    shared = write_html(s, tmp_path / "a.html", plotlyjs="shared")
    scripts = [f for f in os.listdir(tmp_path) if f.endswith(".js")]
    assert len(scripts) == 1 and re.fullmatch(r"plotly-[0-9.]+\.min\.js", scripts[0])
    from plotly.offline import get_plotlyjs

    script = tmp_path / scripts[0]
    assert script.read_text(encoding="utf-8") == get_plotlyjs()  # the whole library, offline: no CDN
    page = open(shared, encoding="utf-8").read()
    assert re.search(rf'<script[^>]*src="{re.escape(scripts[0])}"', page)
    assert not re.search(r"https?://", re.sub(r"<svg.*?</svg>", "", page))
    assert os.path.getsize(shared) < 0.1 * os.path.getsize(inline)  # the page is its data
    before = script.stat().st_mtime_ns
    write_html(basin(11), tmp_path / "b.html", plotlyjs="shared")
    assert script.stat().st_mtime_ns == before  # written once per folder


def test_landscape_plot_shared_js(tmp_path, capsys):
    path = tmp_path / "s.h5"
    write_surface(path, basin(11))
    assert plot_cli.main([str(path), "--html", "--shared-js"]) == 0, capsys.readouterr().err
    assert (tmp_path / "s.html").stat().st_size < 500_000
    assert len(list(tmp_path.glob("plotly-*.min.js"))) == 1
    assert plot_cli.main([str(path), "--shared-js"]) == 2
    assert "--shared-js is for the HTML page" in capsys.readouterr().err
