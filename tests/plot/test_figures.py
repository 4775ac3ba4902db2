"""Figure defects, checked on the artists: a readable colour bar, legends outside the curves,
round contours on coarse grids, labelled ticks on a narrow log axis, one colour per pruned layer
and the unpruned accuracy in the legend, no density floor drawn as data, the three-model plane."""

from __future__ import annotations

from types import SimpleNamespace

import numpy as np
import pytest
from helpers import make_surface
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.collections import PatchCollection
from matplotlib.colors import to_rgba
from matplotlib.figure import Figure

from landscape.plot import mpl
from landscape.plot.compare import compare_figure
from landscape.plot.hessian import FLOOR, spectral_density
from landscape.plot.prune import sensitivity_curves
from landscape.plot.render import figures
from landscape.plot.style import Style


def labels(axis) -> list[str]:
    lo, hi = sorted(axis.axes.get_ylim() if axis is axis.axes.yaxis else axis.axes.get_xlim())
    return [t.get_text() for t, v in zip(axis.get_ticklabels(), axis.get_ticklocs(), strict=True)
            if t.get_text() and lo <= v <= hi]


def bowl(n: int, lo: float = 1e-3, attrs: dict | None = None):
    x = y = np.linspace(-1, 1, n)
    xx, yy = np.meshgrid(x, y)
    return make_surface([x, y], {"train_loss": lo + xx**2 + yy**2}, attrs or {"split": "train"})


def test_a_narrow_log_colour_bar_has_several_short_labels():
    x = y = np.linspace(-1, 1, 9)
    xx, yy = np.meshgrid(x, y)
    s = make_surface([x, y], {"train_loss": 0.0135 + 0.0007 * (xx**2 + yy**2) / 2}, {"split": "train"})
    fig = Figure()
    ax = fig.subplots()
    sc = mpl.surface_scale(s, Style(scale="log"))
    cbar = mpl.colorbar(fig, mpl.contour(ax, s, levels=sc, labels=False), ax, "loss", sc)
    FigureCanvasAgg(fig).draw()
    shown = labels(cbar.ax.yaxis)
    assert len(shown) >= 3 and all(len(t) <= 8 for t in shown), shown


def test_1d_comparison_legends_sit_below_the_curves():
    x = np.linspace(-1, 1, 21)
    surfaces = [make_surface([x], {"train_loss": 0.1 + k + x**2, "train_acc": 100 - 0.1 * x**2},
                             {"split": "train"}) for k in range(3)]
    fig = compare_figure(surfaces, Style(twin=True), titles=["a", "b", "c"])
    renderer = FigureCanvasAgg(fig).get_renderer()
    fig.canvas.draw()
    ax = fig.axes[0]
    legend = ax.get_legend()
    assert legend is not None
    assert legend.get_window_extent(renderer).y1 <= ax.get_window_extent(renderer).y0 + 1
    assert "accuracy (dashed)" in [t.get_text() for t in legend.get_texts()]


def test_contours_of_a_coarse_bowl_are_round():
    s = bowl(7)
    fig = Figure()
    ax = fig.subplots()
    sc = mpl.surface_scale(s)
    assert sc.log  # 3 decades: automatic log levels, the case of the star-shaped polygons
    cs = mpl.contour(ax, s, levels=sc, labels=False)
    checked = 0
    for level, path in zip(cs.levels, cs.get_paths(), strict=True):
        r = np.sqrt(level - 1e-3)
        if not 0.25 <= r <= 0.8 or not len(path.vertices):
            continue
        radii = np.hypot(*path.vertices.T)
        assert np.abs(radii / r - 1).max() < 0.02, (level, radii.min(), radii.max())
        checked += 1
    assert checked >= 5


def test_coarse_contours_leave_no_hole_and_mark_missing_points():
    s = bowl(9)
    s.values["train_loss"][2, 6] = np.nan
    fig = figures(s, kinds=["contourf"])["contourf"]
    ax = fig.axes[0]
    hatched = [c for c in ax.collections if isinstance(c, PatchCollection) and c.get_hatch()]
    assert len(hatched) == 1 and "not finite (1 point)" in [t.get_text() for t in ax.get_legend().get_texts()]
    # the filled contours cover every cell away from the missing point: no white inside the axes
    canvas = FigureCanvasAgg(fig)
    canvas.draw()
    box = ax.get_window_extent()
    img = np.asarray(canvas.buffer_rgba())
    h = img.shape[0]
    inner = img[int(h - box.y1) + 3:int(h - box.y0) - 3, int(box.x0) + 3:int(box.x1) - 3, :3]
    assert (inner.min(axis=2) >= 250).sum() < 0.003 * inner[..., 0].size  # the missing cell is hatched grey


def test_a_narrow_log_axis_has_more_than_two_labelled_ticks():
    x = np.linspace(-0.1, 1.5, 33)
    a = make_surface([x], {"test_loss": 0.025 + 0.02 * x**2}, {"split": "test"})
    b = make_surface([x], {"test_loss": 0.027 + 0.005 * x}, {"split": "test"})
    fig = compare_figure([a, b], Style(quantity="test_loss", scale="log"), titles=["a", "b"])
    FigureCanvasAgg(fig).draw()
    assert len(labels(fig.axes[0].yaxis)) >= 3


def test_sensitivity_layers_have_their_own_colours_and_the_baseline_a_legend_entry():
    result = SimpleNamespace(layers=["features.0", "features.3", "features.7"], ratios=[0.1, 0.5, 0.9],
                             accuracy=np.array([[90, 50, 10], [85, 60, 12], [99, 95, 30.0]]), loss=np.ones((3, 3)),
                             stages=[0, 0, 1], baseline_accuracy=99.2, baseline_loss=0.03)
    fig = Figure()
    ax = fig.subplots()
    lines = sensitivity_curves(ax, result)
    colours = {to_rgba(line.get_color()) for line in lines[:3]}
    assert len(colours) == 3
    texts = [t.get_text() for t in ax.get_legend().get_texts()]
    assert texts[:3] == result.layers and any(t.startswith("unpruned") and "99.2" in t for t in texts)


def test_the_density_floor_is_not_drawn_as_data_and_no_bump_floats():
    """Below the axis' floor the curve leaves the plot through the bottom edge: no plateau drawn at
    the floor (issue 24), and no bump floating above the axis with its feet cut off (issue 31)."""
    grid = np.linspace(-1, 10, 500)
    values = np.exp(-((grid - 0) ** 2) / 0.01) + 1e-3 * np.exp(-((grid - 8) ** 2) / 0.01)
    fig = Figure()
    ax = fig.subplots()
    line = spectral_density(ax, (grid, values), [8.0])
    y = np.asarray(line.get_ydata(), dtype=float)
    floor = ax.get_ylim()[0]
    assert floor == pytest.approx(values.max() * FLOOR)
    assert np.isfinite(y).all()  # one unbroken curve: each bump meets the axis' bottom edge
    tails = values < floor
    assert tails.any() and (y[tails] < floor).all()  # drawn below the axis, not along it
    bump = (grid > 7.5) & (grid < 8.5)
    assert y[bump].max() > floor and y[bump].min() < floor  # the small bump rises from the bottom edge


def test_the_plane_of_three_models_marks_them():
    s = bowl(9, attrs={"split": "train", "directions_from": "model2, model3", "model": "/r/a.pt",
                       "model2": "/r/b.pt", "model3": "/r/c.pt"})
    s.values["train_loss"][8, 8] = np.inf
    fig = figures(s, kinds=["contour"])["contour"]
    ax = fig.axes[0]
    points = {tuple(np.ravel(line.get_xydata())) for line in ax.get_lines()}
    assert {(0.0, 0.0), (1.0, 0.0), (0.0, 1.0)} <= points
    assert {"a.pt", "b.pt", "c.pt"} <= {t.get_text() for t in ax.texts}
    assert any(isinstance(c, PatchCollection) and c.get_hatch() for c in ax.collections)
