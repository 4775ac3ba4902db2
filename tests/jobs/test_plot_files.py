"""What landscape-plot's job reads and writes: it names a file of another kind instead of calling it
damaged, refuses drawings that would mislead, draws a path over a surface of its own directions,
puts another quantity's name in its figures' names (replacing no others), and reads and draws the
original tool's convexity files."""

from __future__ import annotations

import numpy as np
import pytest
from helpers import assert_one_line, make_surface, saved_figures


@pytest.mark.parametrize("argv,message", [
    (["hess.h5"], "'{d}/hess.h5' is a Hessian summary file (landscape-hessian), not a surface file"),
    (["pca.h5"], "'{d}/pca.h5' is a trajectory file (landscape-traj), not a surface file"),
    (["onpath.h5", "--trajectory", "random.h5"], "'{d}/random.h5' is a surface file (landscape-surf), not a "
     "trajectory file"),
    (["sens.h5"], "'{d}/sens.h5' is a pruning sensitivity file, not a loss surface"),
    (["random.h5", "--trajectory", "pca.h5"], "'{d}/random.h5' was not computed on the directions of '{d}/pca.h5'"),
    (["line.h5", "--xlim", "5:6"], "the x range 5:6 lies outside the data (-1..1)"),
])
def test_plot_names_what_a_file_is_and_refuses_misleading_drawings(kinds, capsys, argv, message):
    from landscape.cli.plot import main

    argv = [str(kinds / a) if a.endswith(".h5") else a for a in argv]
    assert main([*argv, "--formats", "png"]) == 2
    assert_one_line(capsys.readouterr().err, "landscape-plot", message.format(d=kinds))
    assert sorted(p.name for p in kinds.glob("*.png")) == ["sens.png", "sens_norms.png"]  # prune's own, no more


def test_a_path_is_drawn_over_a_surface_of_its_own_directions(kinds, tmp_path, monkeypatch):
    from landscape.cli.plot import main
    from landscape.io.trajectory_file import read_trajectory

    figures = saved_figures(monkeypatch)
    assert main([str(kinds / "onpath.h5"), "--trajectory", str(kinds / "pca.h5"), "--formats", "png",
                 "--out", str(tmp_path / "p")]) == 0
    assert (tmp_path / "p_trajectory.png").exists()
    ax = figures["p_trajectory.png"].axes[0]
    path = read_trajectory(kinds / "pca.h5", directions=False)
    drawn = [line for line in ax.lines if line.get_label() == "optimization path"]
    assert len(drawn) == 1  # the path itself, over the surface's contours
    np.testing.assert_array_equal(drawn[0].get_xdata(), path.xcoord)
    np.testing.assert_array_equal(drawn[0].get_ydata(), path.ycoord)
    assert ax.collections, "no contours under the path"


def _eig_surface(path, names=("train_loss", "train_acc", "max_eig", "min_eig")):
    from landscape.io.surface_file import write_surface

    x = np.linspace(-1, 1, 5)
    xx, yy = np.meshgrid(x, x)
    values = {"train_loss": 1 + xx**2 + yy**2, "train_acc": 90 - xx**2, "max_eig": 2 + xx, "min_eig": -0.1 * yy}
    write_surface(path, make_surface([x, x], {n: values[n] for n in names}))
    return path


def test_figures_of_another_quantity_carry_its_name_and_replace_no_others(tmp_path, capsys):
    from landscape.cli.plot import main

    path = _eig_surface(tmp_path / "s.h5")
    opts = ["--kinds", "contour,heatmap", "--formats", "png"]
    assert main([str(path), *opts]) == 0
    loss = {p: p.read_bytes() for p in tmp_path.glob("*.png")}
    assert sorted(p.name for p in loss) == ["s_contour.png", "s_heatmap.png"]
    for quantity, tag in [("eig_ratio", "eig_ratio"), ("acc", "train_acc"), ("max_eig", "max_eig")]:
        assert main([str(path), *opts, "--quantity", quantity]) == 0
        assert (tmp_path / f"s_{tag}_contour.png").exists() and (tmp_path / f"s_{tag}_heatmap.png").exists()
    assert main([str(path), *opts, "--quantity", "eig_ratio", "--html"]) == 0
    assert (tmp_path / "s_eig_ratio.html").exists() and not (tmp_path / "s.html").exists()
    assert all(p.read_bytes() == data for p, data in loss.items())  # the loss figures were never replaced


def _original_convexity_file(path, with_loss: bool):
    """As its plot_hessian_eigen.py writes one (arrays shaped (nx, ny), point (x[i], y[j]) at flat
    j*nx + i, max_eig starting at -1 and min_eig at 1), and its plot_surface.py adds the loss to."""
    import h5py

    x, y = np.linspace(-1, 1, 5), np.linspace(-0.5, 0.5, 3)
    xx, yy = np.meshgrid(x, y)  # [j, i]
    mx, mn, loss = 2 + xx, -0.1 * yy - 0.05, 1 + xx**2 + yy**2
    mx[2, 4], mn[2, 4] = -1, 1  # one point not computed yet
    with h5py.File(path, "w") as f:
        f["xcoordinates"], f["ycoordinates"] = x, y
        f["max_eig"], f["min_eig"] = mx.ravel().reshape(5, 3), mn.ravel().reshape(5, 3)
        if with_loss:
            f["train_loss"] = loss.ravel().reshape(5, 3)
            f["train_acc"] = (100 - loss).ravel().reshape(5, 3)
    return np.where(mx == -1, np.nan, np.abs(mn / mx))


def test_the_original_tools_convexity_files_are_read_and_drawn(tmp_path, capsys):
    from landscape.cli.plot import main
    from landscape.io.surface_file import read_surface

    ratio = _original_convexity_file(tmp_path / "c.h5", with_loss=False)
    np.testing.assert_allclose(read_surface(tmp_path / "c.h5").quantity("eig_ratio"), ratio)
    assert main([str(tmp_path / "c.h5"), "--kinds", "contour", "--formats", "png"]) == 0, capsys.readouterr().err
    assert (tmp_path / "c_eig_ratio_contour.png").exists()  # its one map, named as such

    _original_convexity_file(tmp_path / "l.h5", with_loss=True)
    for quantity in ("max_eig", "eig_ratio", "loss"):
        assert main([str(tmp_path / "l.h5"), "--quantity", quantity, "--kinds", "contour", "--formats", "png"]) == 0
    assert sorted(p.name for p in tmp_path.glob("l_*.png")) == ["l_contour.png", "l_eig_ratio_contour.png",
                                                                 "l_max_eig_contour.png"]


def test_the_evaluated_points_of_an_adaptive_surface_are_marked_when_asked(tmp_path, monkeypatch):
    from landscape.cli.plot import main
    from landscape.io.surface_file import write_surface

    x = np.linspace(-1, 1, 5)
    xx, yy = np.meshgrid(x, x)
    s = make_surface([x, x], {"train_loss": 1 + xx**2 + yy**2, "train_acc": 90 - xx**2})
    evaluated = (np.arange(25).reshape(5, 5) % 3 == 0)
    s.arrays["evaluated"] = evaluated.astype(np.uint8)
    write_surface(tmp_path / "a.h5", s)
    figures = saved_figures(monkeypatch)
    assert main([str(tmp_path / "a.h5"), "--mark-evaluated", "--kinds", "contour", "--formats", "png"]) == 0
    assert main([str(tmp_path / "a.h5"), "--kinds", "heatmap", "--formats", "png"]) == 0
    marks = [c for c in figures["a_contour.png"].axes[0].collections if c.get_label().startswith("evaluated")]
    assert len(marks) == 1 and marks[0].get_label().startswith(f"evaluated ({evaluated.sum()} of 25 points")
    np.testing.assert_array_equal(marks[0].get_offsets(), np.column_stack([xx[evaluated], yy[evaluated]]))
    assert not [c for c in figures["a_heatmap.png"].axes[0].collections if c.get_label().startswith("evaluated")]
