"""Views the original tool's users expect: 1D limits and x range, fixed level spacing, its
projection files, any stored quantity by name (eig_ratio included)."""

from __future__ import annotations

import json

import h5py
import numpy as np
import pytest
from helpers import make_surface
from matplotlib.figure import Figure

from landscape.cli import plot as plot_cli
from landscape.io.surface_file import write_surface
from landscape.io.trajectory_file import read_trajectory
from landscape.plot import Style, contour, plot_1d
from landscape.plot.render import figures


def line():
    x = np.linspace(-1, 1, 21)
    return make_surface([x], {"train_loss": 1 + x**2, "train_acc": 90 - x, "test_loss": 2 + x**2},
                        {"split": "train"})


def test_1d_view_honours_vmin_vmax_and_the_x_range():
    s = line()
    ax = Figure().subplots()
    plot_1d(ax, s, Style(vmin=1.2, vmax=1.8, xlim=(-0.5, 0.5)))
    assert ax.get_ylim() == pytest.approx((1.2, 1.8)) and ax.get_xlim() == pytest.approx((-0.5, 0.5))
    fig = figures(s, Style(vmin=0.5, vmax=3.0, xlim=(0, 1), quantity="test_loss"))["1d"]
    assert fig.axes[0].get_ylim() == pytest.approx((0.5, 3.0)) and fig.axes[0].get_ylabel() == "test loss"


def test_1d_view_of_a_file_with_both_splits_draws_both():
    s = line()
    ax = Figure().subplots()
    loss_line, acc_line = plot_1d(ax, s)
    lines = {ln.get_label(): ln for ln in ax.get_lines()}
    assert set(lines) == {"train loss", "test loss"} and loss_line is lines["train loss"]
    np.testing.assert_allclose(lines["test loss"].get_ydata(), 2 + s.x**2)
    assert acc_line.get_label() == "train accuracy"  # the file has no test accuracy: none drawn
    legend = [t.get_text() for t in ax.get_legend().get_texts()]
    assert legend == ["train loss", "test loss", "train accuracy"]
    one = Figure().subplots()
    plot_1d(one, s, Style(quantity="test_loss"))  # one quantity asked for: that one alone, no legend
    assert [ln.get_label() for ln in one.get_lines()] == ["test loss"] and one.get_legend() is None


def test_fixed_level_spacing():
    x = y = np.linspace(-1, 1, 9)
    s = make_surface([x, y], {"train_loss": 0.1 + x[None, :] ** 2 + y[:, None] ** 2}, {"split": "train"})
    cs = contour(Figure().subplots(), s, Style(vmin=0.1, vmax=2.1, step=0.5))
    np.testing.assert_allclose(cs.levels, [0.1, 0.6, 1.1, 1.6, 2.1])


def test_eig_ratio_is_derived_and_drawn(tmp_path, capsys):
    x = y = np.linspace(-1, 1, 5)
    mx = 2.0 + x[None, :] ** 2 + 0 * y[:, None]
    mn = -0.1 * x[None, :] * y[:, None]
    s = make_surface([x, y], {"train_loss": mx, "max_eig": mx, "min_eig": mn},
                     {"split": "train", "inputs": json.dumps({"metrics": {}})})
    np.testing.assert_allclose(s.quantity("eig_ratio"), np.abs(mn / mx))
    path = tmp_path / "e.h5"
    write_surface(path, s)
    assert plot_cli.main([str(path), "--quantity", "eig_ratio", "--kinds", "contour,heatmap",
                          "--formats", "png"]) == 0, capsys.readouterr().err
    assert (tmp_path / "e_eig_ratio_heatmap.png").exists()  # the quantity in the name (issue 24.4)


def test_the_original_tools_projection_file(tmp_path, capsys):
    dirs = tmp_path / "PCA_weights_save_epoch=1" / "directions.h5"
    dirs.parent.mkdir()
    with h5py.File(dirs, "w") as f:  # what the original's plot_trajectory.py writes
        f["xdirection/0"] = np.zeros(3)
        f["explained_variance_ratio_"] = np.array([0.62, 0.21])
        f["explained_variance_"] = np.array([3.0, 1.0])
    proj = tmp_path / "PCA_weights_save_epoch=1" / "directions.h5_proj_cos.h5"
    with h5py.File(proj, "w") as f:
        f["proj_xcoord"] = np.array([0.9, 0.4, 0.1, 0.0])
        f["proj_ycoord"] = np.array([0.5, 0.2, -0.1, 0.0])
    t = read_trajectory(proj)
    np.testing.assert_allclose(t.explained_variance_ratio, [0.62, 0.21])
    np.testing.assert_allclose(t.xcoord, [0.9, 0.4, 0.1, 0.0])
    x = y = np.linspace(-1, 1, 5)
    s = make_surface([x, y], {"train_loss": 1 + x[None, :] ** 2 + y[:, None] ** 2},
                     {"split": "train", "inputs": json.dumps({"metrics": {}})})
    write_surface(tmp_path / "s.h5", s)
    assert plot_cli.main([str(tmp_path / "s.h5"), "--trajectory", str(proj), "--formats", "png"]) == 0, \
        capsys.readouterr().err
    assert (tmp_path / "s_trajectory.png").exists()
