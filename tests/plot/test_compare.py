"""Side-by-side surfaces on one colour scale, their titles, and the optimization path plot."""

from __future__ import annotations

import argparse
import io

import numpy as np
import pytest
import torch
from helpers import assert_round_levels
from matplotlib.colors import LogNorm
from matplotlib.figure import Figure

from landscape.errors import LandscapeError
from landscape.io.surface_file import Surface, new_surface
from landscape.io.trajectory_file import Trajectory
from landscape.plot.compare import compare, compare_figure, describe
from landscape.plot.path import trajectory, trajectory_figure
from landscape.plot.style import Style


def bowl(scale: float, half: float = 1.0, n: int = 9, attrs: dict | None = None) -> Surface:
    """``scale * (0.1 + x^2 + y^2)`` on [-half, half]^2 with a NaN corner."""
    x = y = np.linspace(-half, half, n)
    loss = scale * (0.1 + x[None, :] ** 2 + y[:, None] ** 2)
    loss[0, 0] = np.nan
    s = new_surface([x, y], ["train_loss", "train_acc"], {"split": "train", **(attrs or {})})
    s.values.update(train_loss=loss, train_acc=100 - loss)
    s.done.update(train_loss=np.isfinite(loss), train_acc=np.isfinite(loss))
    return s


def line(scale: float) -> Surface:
    x = np.linspace(-1, 1, 11)
    loss = scale * (0.5 + x**2)
    s = new_surface([x], ["train_loss", "train_acc"], {"split": "train", "arch": f"net{scale:g}"})
    s.values.update(train_loss=loss, train_acc=100 - loss)
    s.done.update(train_loss=np.ones(11, bool), train_acc=np.ones(11, bool))
    return s


def axes_row(n: int):
    return Figure().subplots(1, n)


@pytest.mark.parametrize("kind", ["contour", "contourf"])
def test_one_norm_and_one_set_of_levels(kind):
    surfaces = [bowl(1.0, n=17), bowl(3.0, half=2.0, n=17), bowl(10.0, n=17)]  # fine grids: the colours span the data
    artists = compare(axes_row(3), surfaces, Style(levels=12, scale="linear"), kind=kind)
    finite = np.concatenate([s.loss[np.isfinite(s.loss)] for s in surfaces])
    lo, hi = finite.min(), finite.max()  # over all surfaces together
    lines = artists[0].levels if kind == "contour" else artists[0].levels[1:-1]  # filled: the ends are bands' edges
    assert_round_levels(lines, lo, hi, 12)
    for art in artists:
        np.testing.assert_allclose(art.levels, artists[0].levels)
        assert (art.norm.vmin, art.norm.vmax) == pytest.approx((lo, hi))


def test_shared_axis_ranges_and_titles():
    surfaces = [bowl(1.0, attrs={"arch": "a"}), bowl(1.0, half=2.0, attrs={"arch": "b"})]
    axes = axes_row(2)
    compare(axes, surfaces)
    for ax in axes:
        assert ax.get_xlim() == pytest.approx((-2.0, 2.0))
        assert ax.get_ylim() == pytest.approx((-2.0, 2.0))
    assert [ax.get_title() for ax in axes] == ["a", "b"]


def test_given_range_and_log_scale():
    surfaces = [bowl(1.0, n=17), bowl(5.0, n=17)]
    artists = compare(axes_row(2), surfaces, Style(levels=7, vmin=0.2, vmax=3.0), kind="contourf")
    for art in artists:
        assert art.levels[0] == pytest.approx(0.2) and art.levels[-1] == pytest.approx(3.0)  # the colour range
        assert_round_levels(art.levels[1:-1], 0.2, 3.0, 7)
    logs = compare(axes_row(2), surfaces, Style(levels=5, scale="log"), kind="contour")
    lo = min(np.nanmin(s.loss) for s in surfaces)
    hi = max(np.nanmax(s.loss) for s in surfaces)
    for art in logs:
        assert isinstance(art.norm, LogNorm) and (art.norm.vmin, art.norm.vmax) == pytest.approx((lo, hi))
        assert_round_levels(art.levels, lo, hi, 5, log=True)


def test_heatmaps_share_the_norm():
    surfaces = [bowl(1.0), bowl(4.0)]
    meshes = compare(axes_row(2), surfaces, kind="heatmap")
    hi = np.nanmax(surfaces[1].loss)
    for mesh in meshes:
        assert (mesh.norm.vmin, mesh.norm.vmax) == pytest.approx((0.1, hi))


def test_1d_curves_overlay_or_share_the_y_range():
    surfaces = [line(1.0), line(2.0)]
    ax = Figure().subplots()
    lines = compare(ax, surfaces)
    assert len(ax.get_lines()) == 2 and [ln.get_label() for ln in lines] == ["net1", "net2"]
    assert ax.get_yscale() == "linear"  # 0.5 .. 3: not two decades
    np.testing.assert_array_equal(lines[1].get_ydata(), surfaces[1].loss)
    axes = axes_row(2)
    compare(axes, surfaces)
    assert axes[0].get_ylim() == axes[1].get_ylim() == pytest.approx((0.5, 3.0))


def test_compare_figure_has_one_colorbar():
    fig = compare_figure([bowl(1.0), bowl(2.0), bowl(3.0), bowl(4.0)], kind="contourf", ncols=3)
    assert fig.axes[0].get_xlabel() == "direction 1"  # the file records no directions: numbered only
    panels = [ax for ax in fig.axes if ax.get_visible() and ax.get_label() != "<colorbar>"]
    bars = [ax for ax in fig.axes if ax.get_label() == "<colorbar>"]
    assert len(panels) == 4 and len(bars) == 1
    fig.savefig(io.BytesIO(), format="png")  # draws without error


def test_mixed_dimensions_are_refused():
    with pytest.raises(LandscapeError, match="different dimensions"):
        compare(axes_row(2), [line(1.0), bowl(1.0)])


def test_describe_reads_the_training_checkpoint(tmp_path):
    from landscape.jobs.train import TrainConfig, train

    run = train(TrainConfig.from_args(arch="mlp", dataset="digits", epochs=1, batch_size=32,
                            weight_decay=1e-3, save_every=1, subset=100,
                            out=str(tmp_path / "run"), progress=False))
    from landscape.jobs.plot import record_training_

    s = bowl(1.0, attrs={"arch": "mlp", "model": run.checkpoints[-1]})
    assert describe(s) == "mlp"  # the plot itself never opens a checkpoint
    record_training_(s)  # landscape-plot does, for files written before the attributes were
    err = 100.0 - run.test_accuracy
    assert describe(s) == f"mlp, SGD, bs=32, wd=0.001, test err {err:.2f} %"
    gone = bowl(1.0, attrs={"arch": "mlp", "model": str(tmp_path / "gone.pt")})
    record_training_(gone)
    assert describe(gone) == "mlp"


def test_describe_does_not_unpickle_objects(tmp_path):
    path = tmp_path / "pickled.pt"
    torch.save({"args": argparse.Namespace(optimizer="sgd"), "accuracy": 90.0}, path)
    from landscape.jobs.plot import record_training_

    s = bowl(1.0, attrs={"arch": "vgg9", "model": str(path)})
    record_training_(s)
    assert describe(s) == "vgg9"


def path_of(ratio=(0.835, 0.1)) -> Trajectory:
    return Trajectory(
        directions=[], xcoord=np.array([2.0, 1.0, 0.3, 0.0]),
        ycoord=np.array([1.0, -0.5, 0.1, 0.0]), explained_variance_ratio=np.array(ratio),
        residual=np.zeros(4), checkpoints=[], epochs=np.array([0, 10, 20, 30]),
    )


def test_trajectory_draws_the_path_with_pc_labels():
    ax = Figure().subplots()
    path = trajectory(ax, path_of())
    np.testing.assert_array_equal(path.get_xdata(), [2.0, 1.0, 0.3, 0.0])
    np.testing.assert_array_equal(path.get_ydata(), [1.0, -0.5, 0.1, 0.0])
    assert ax.get_xlabel() == "1st PC: 83.5 %" and ax.get_ylabel() == "2nd PC: 10.0 %"
    assert [t.get_text() for t in ax.texts] == ["start (epoch 0)", "end (epoch 30)"]


def test_trajectory_figure_over_contours():
    fig = trajectory_figure(path_of(), bowl(1.0, half=2.5))
    ax = fig.axes[0]
    assert ax.get_xlabel().startswith("1st PC") and len(ax.collections) > 0
    assert len(fig.axes) == 1 and len(ax.child_axes) == 1  # the panel, and its colour bar beside it
    bar = ax.child_axes[0]
    assert bar.get_position().height == pytest.approx(ax.get_position().height)  # exactly as tall


def test_auto_scale_resolves_the_basin_with_log_levels():
    """A loss spanning decades gets log-spaced levels: most contours lie in the basin."""
    s = bowl(1.0, half=3.0, n=41)  # 0.1 .. 18.1
    (art,) = compare(Figure().subplots(), [s], Style(levels=30), kind="contour")
    assert isinstance(art.norm, LogNorm)
    basin = np.nanmin(s.loss) * 10  # the bottom decade
    assert (np.asarray(art.levels) < basin).sum() >= 10


def test_1d_twin_axes_draw_accuracy_dashed():
    fig = compare_figure([line(1.0), line(2.0)], Style(twin=True))
    ax = fig.axes[0]
    twin = [a for a in fig.axes if a is not ax][0]
    assert len(ax.get_lines()) == 2 and len(twin.get_lines()) == 2
    assert twin.get_lines()[0].get_linestyle() == "--" and twin.get_ylim() == (0, 100)
