"""Plot options checked by what they do to the figure, not by the files they write.

Each option (contour levels, level step, vmin/vmax, the quantity, log or linear scale, axis
ranges) is read back from the returned artists and axes: the levels of the contour set, the
norm of the colours, the array a heat map draws, the axis limits and scales, the colour bar's
label. ``landscape-plot``'s flags are checked the same way by catching its figures before they
are saved.
"""

from __future__ import annotations

import numpy as np
import pytest
from helpers import assert_round_levels, make_surface
from matplotlib.colors import LogNorm
from matplotlib.figure import Figure

from landscape.cli import plot as plot_cli
from landscape.errors import LandscapeError
from landscape.io.surface_file import write_surface
from landscape.io.trajectory_file import Trajectory
from landscape.plot import mpl, render
from landscape.plot.hessian import FLOOR, spectral_density
from landscape.plot.path import trajectory_figure
from landscape.plot.style import Style

X = np.linspace(-1.0, 1.0, 7)
Y = np.linspace(-0.5, 0.5, 5)


def grid_surface():
    """Two losses of different shape and range, accuracies and Hessian extremes; one NaN point."""
    xx, yy = X[None, :], Y[:, None]
    train = 0.01 + xx**2 + 2 * yy**2
    train[0, 0] = np.nan  # a point not computed: masked, never drawn
    return make_surface([X, Y], {
        "train_loss": train, "train_acc": 100 - 10 * (xx**2 + yy**2),
        "test_loss": 1.0 + 0.5 * (xx**2 + yy**2) + 0 * yy, "max_eig": 2.0 + xx + 0 * yy,
        "min_eig": -0.5 * xx * yy,
    }, {"split": "train"})


def contour_set(fig: Figure):
    (cs,) = [c for c in fig.axes[0].collections if hasattr(c, "levels") and c.get_gid() != "extension"]
    return cs


def colorbar_axes(fig: Figure):
    return fig.axes[0].child_axes[0]  # the colour bar sits in an inset axes beside the plot


def test_levels_and_limits_set_the_contour_levels_and_the_colours():
    s = grid_surface()
    figs = render.figures(s, Style(levels=9, vmin=0.2, vmax=1.5, scale="linear"),
                          kinds=["contour", "contourf", "heatmap"])
    for kind in ("contour", "contourf"):
        cs = contour_set(figs[kind])
        assert_round_levels(cs.levels if kind == "contour" else cs.levels[1:-1], 0.2, 1.5, 9)
        assert (cs.norm.vmin, cs.norm.vmax) == pytest.approx((0.2, 1.5)) and not isinstance(cs.norm, LogNorm)
        assert colorbar_axes(figs[kind]).get_ylim() == pytest.approx((0.2, 1.5))
    mesh = figs["heatmap"].axes[0].collections[0]
    assert (mesh.norm.vmin, mesh.norm.vmax) == pytest.approx((0.2, 1.5))
    # without limits: the colours span the finite data (the grid is coarse: from the lowest value it
    # resolves), the levels are round values inside, about as many as asked
    cs = contour_set(render.figures(s, Style(levels=5, scale="linear"), kinds=["contour"])["contour"])
    floor = mpl.resolved_floor(s, "loss")
    assert (cs.norm.vmin, cs.norm.vmax) == pytest.approx((floor, np.nanmax(s.loss)))
    assert_round_levels(cs.levels, floor, np.nanmax(s.loss), 5)


def test_a_level_step_spaces_the_levels():
    style = Style(vmin=0.25, vmax=1.25, step=0.25)
    cs = contour_set(render.figures(grid_surface(), style, kinds=["contour"])["contour"])
    np.testing.assert_allclose(cs.levels, [0.25, 0.5, 0.75, 1.0, 1.25])


@pytest.mark.parametrize("quantity, key", [("loss", "train_loss"), ("test_loss", "test_loss"), ("acc", "train_acc")])
def test_the_quantity_is_the_array_drawn(quantity, key):
    s = grid_surface()
    fig = render.figures(s, Style(quantity=quantity, scale="linear"), kinds=["heatmap"])["heatmap"]
    mesh = fig.axes[0].collections[0]
    expected = np.ma.masked_invalid(s.values[key])
    drawn = np.ma.asarray(mesh.get_array()).reshape(s.shape)
    np.testing.assert_array_equal(np.ma.getmaskarray(drawn), np.ma.getmaskarray(expected))
    np.testing.assert_allclose(drawn.compressed(), expected.compressed())
    assert colorbar_axes(fig).get_ylabel() == s.label(quantity)


def test_the_derived_eig_ratio_is_drawn_with_its_own_range():
    s = grid_surface()
    ratio = np.abs(s.values["min_eig"] / s.values["max_eig"])
    cs = contour_set(render.figures(s, Style(quantity="eig_ratio", levels=6), kinds=["contour"])["contour"])
    lo = mpl.resolved_floor(s, "eig_ratio")
    assert (cs.norm.vmin, cs.norm.vmax) == pytest.approx((lo, ratio.max()))
    assert_round_levels(cs.levels, lo, ratio.max(), 6)
    assert not isinstance(cs.norm, LogNorm)  # auto chooses log only for a loss


def test_log_scale_gives_log_levels_colours_and_heights():
    s = grid_surface()
    figs = render.figures(s, Style(levels=6, scale="log"), kinds=["contour", "3d"])
    cs = contour_set(figs["contour"])
    lo, hi = np.nanmin(s.loss), np.nanmax(s.loss)
    assert isinstance(cs.norm, LogNorm)
    assert_round_levels(cs.levels, mpl.resolved_floor(s, "loss"), hi, 6, log=True)
    assert colorbar_axes(figs["contour"]).get_ylabel().endswith("(log scale)")
    ax3 = figs["3d"].axes[0]
    assert ax3.get_zlabel().startswith("log10")
    z0, z1 = ax3.get_zlim()
    assert z0 <= np.log10(lo) < np.log10(hi) <= z1 < 1.5  # log10 heights: the linear maximum (2.01) is off the axis
    linear = render.figures(s, Style(scale="linear"), kinds=["3d"])["3d"].axes[0]
    assert not linear.get_zlabel().startswith("log10") and linear.get_zlim()[1] >= hi


def test_auto_scale_is_log_only_for_a_loss_over_more_than_two_decades():
    s = grid_surface()  # 0.01 .. 2.01: more than two decades (the grid's neighbours of its minimum: 0.0767..)
    s.coords = [np.linspace(-1.0, 1.0, 7), np.linspace(-0.5, 0.5, 5)]
    assert isinstance(contour_set(render.figures(s, kinds=["contour"])["contour"]).norm, LogNorm)
    assert not isinstance(contour_set(render.figures(s, Style(scale="linear"), kinds=["contour"])["contour"]).norm,
                          LogNorm)
    s.values["train_loss"] = s.values["train_loss"] + 0.1  # 0.11 .. 2.11: not two decades
    assert not isinstance(contour_set(render.figures(s, kinds=["contour"])["contour"]).norm, LogNorm)


def test_vmax_clips_the_3d_heights_and_the_axes_cover_the_grid():
    s = grid_surface()
    ax3 = render.figures(s, Style(vmax=0.5, scale="linear"), kinds=["3d"])["3d"].axes[0]
    assert ax3.get_zlim()[1] <= 0.5 + 0.05  # clipped at vmax (plus the axis margin), not 2.01
    ax = render.figures(s, kinds=["contour"])["contour"].axes[0]
    assert ax.get_xlim() == pytest.approx((-1.0, 1.0)) and ax.get_ylim() == pytest.approx((-0.5, 0.5))


def test_1d_log_scale_and_limits():
    x = np.linspace(-1, 1, 11)
    s = make_surface([x], {"train_loss": 1e-3 + x**2, "train_acc": 90 - x}, {"split": "train"})
    ax = render.figures(s, Style(scale="log", vmin=1e-3, vmax=2.0, xlim=(-0.5, 1.0)))["1d"].axes[0]
    assert ax.get_yscale() == "log" and ax.get_ylim() == pytest.approx((1e-3, 2.0))
    assert ax.get_xlim() == pytest.approx((-0.5, 1.0))
    np.testing.assert_allclose(ax.get_lines()[0].get_ydata(), 1e-3 + x**2)
    assert render.figures(s, Style(scale="linear"))["1d"].axes[0].get_yscale() == "linear"
    assert render.figures(s)["1d"].axes[0].get_yscale() == "log"  # auto: a loss over three decades


def test_limits_outside_the_data_are_refused():
    with pytest.raises(LandscapeError, match="below every value"):
        render.figures(grid_surface(), Style(vmax=0.001), kinds=["contour"])


def test_the_path_figure_honours_levels_and_limits():
    s = grid_surface()
    traj = Trajectory([], np.array([0.8, 0.3, 0.0]), np.array([0.4, 0.1, 0.0]), np.array([0.7, 0.2]), np.zeros(3),
                      ["a.pt", "b.pt", "c.pt"], np.array([1, 2, 3]))
    fig = trajectory_figure(traj, s, Style(levels=4, vmin=0.1, vmax=1.0, scale="linear"))
    cs = contour_set(fig)
    assert (cs.norm.vmin, cs.norm.vmax) == pytest.approx((0.1, 1.0))
    assert_round_levels(cs.levels, 0.1, 1.0, 4)
    (path,) = [ln for ln in fig.axes[0].get_lines() if ln.get_label() == "optimization path"]
    np.testing.assert_allclose(path.get_xdata(), traj.xcoord)


def test_the_density_plot_log_option():
    grid = np.linspace(-1, 1, 101)
    values = np.exp(-(grid**2) / 0.01)
    ax = Figure().subplots()
    line = spectral_density(ax, (grid, values), eigenvalues=[0.5])
    assert ax.get_yscale() == "log"
    # the axis starts FLOOR below the peak; above it the density is drawn as it is
    assert ax.get_ylim()[0] == pytest.approx(values.max() * FLOOR)
    above = values > values.max() * FLOOR
    np.testing.assert_allclose(np.asarray(line.get_ydata())[above], values[above])
    ax = Figure().subplots()
    line = spectral_density(ax, (grid, values), log=False)
    assert ax.get_yscale() == "linear"
    np.testing.assert_allclose(line.get_ydata(), values)


def test_landscape_plot_flags_reach_the_figures(tmp_path, monkeypatch, capsys):
    path = tmp_path / "s.h5"
    write_surface(path, grid_surface())
    saved: dict[str, Figure] = {}

    def keep(fig, prefix, name, formats, dpi=150):
        saved[name] = fig
        return [f"{prefix}_{name}.{fmt}" for fmt in formats]

    import landscape.jobs.plot as plot_job  # imported before the patch: it keeps its own name for the function

    monkeypatch.setattr(render, "save_figure", keep)
    monkeypatch.setattr(plot_job, "save_figure", keep)
    assert plot_cli.main([str(path), "--levels", "9", "--vmin", "1.05", "--vmax", "1.5", "--quantity", "test_loss",
                          "--kinds", "contour,heatmap", "--formats", "png"]) == 0, capsys.readouterr().err
    assert set(saved) == {"contour", "heatmap"}
    cs = contour_set(saved["contour"])
    assert (cs.norm.vmin, cs.norm.vmax) == pytest.approx((1.05, 1.5))
    assert_round_levels(cs.levels, 1.05, 1.5, 9)
    mesh = saved["heatmap"].axes[0].collections[0]
    np.testing.assert_allclose(np.ma.asarray(mesh.get_array()).reshape(5, 7), grid_surface().values["test_loss"])
    saved.clear()
    assert plot_cli.main([str(path), "--log", "--levels", "4", "--kinds", "contour", "--formats", "png"]) == 0
    cs = contour_set(saved["contour"])
    assert isinstance(cs.norm, LogNorm)
    s = grid_surface()
    assert_round_levels(cs.levels, mpl.resolved_floor(s, "loss"), np.nanmax(s.loss), 4, log=True)
    assert not list(tmp_path.glob("*.png"))  # caught before saving: the figures themselves were checked


def test_scale_for_is_what_the_figures_use():
    s = grid_surface()
    style = Style(levels=7, vmin=0.3, vmax=1.2, scale="linear")
    sc = mpl.surface_scale(s, style)
    cs = contour_set(render.figures(s, style, kinds=["contour"])["contour"])
    np.testing.assert_allclose(cs.levels, sc.levels)
