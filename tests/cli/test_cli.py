"""landscape-surf and landscape-plot from the command line: the demo, flags, and every user
mistake ending in one line on stderr, exit code 2, no traceback, nothing overwritten."""

from __future__ import annotations

import os

import h5py
import numpy as np
import pytest
import torch
from helpers import save_digits_cnn

from landscape.cli import plot as plot_cli
from landscape.cli import surf as surf_cli
from landscape.jobs.surf import PATH_GRID_POINTS

BASE = ["--arch", "digits_cnn", "--dataset", "digits", "--samples", "100", "--batch-size", "64",
        "--no-progress"]


def surf(args, capsys):
    code = surf_cli.main(args)
    out, err = capsys.readouterr()
    return code, out, err


def assert_user_error(code, err, *fragments):
    assert code == 2
    lines = err.strip().splitlines()
    assert len(lines) == 1, err
    assert lines[0].startswith("landscape-surf: error:") or lines[0].startswith("landscape-plot")
    assert "Traceback" not in err
    for frag in fragments:
        assert frag in lines[0], lines[0]


@pytest.mark.slow
def test_demo_without_arguments_writes_a_surface_and_figures(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("LANDSCAPE_CACHE", str(tmp_path / "cache"))  # its own cache: the demo network is trained
    code, out, err = surf(["--x=-1:1:3", "--y", "-1:1:3", "--no-progress"], capsys)
    assert code == 0, err
    assert "landscape_demo/surface.h5" in out and "cached at" in out
    with h5py.File(tmp_path / "landscape_demo" / "surface.h5") as f:
        assert f["train_loss"].shape == (3, 3) and f["completed"][()].all()
    for kind in ("contour", "contourf", "heatmap", "3d"):
        assert (tmp_path / "landscape_demo" / f"surface_{kind}.png").stat().st_size > 1000
        assert (tmp_path / "landscape_demo" / f"surface_{kind}.pdf").exists()
    code, out, _ = surf(["--x=-1:1:3", "--y", "-1:1:3", "--no-progress"], capsys)
    assert code == 0 and "using the cached" in out  # second run: cached net, finished file


def test_both_grid_spellings_and_a_1d_surface(tmp_path, digits_ckpt, capsys):
    a = str(tmp_path / "a.h5")
    b = str(tmp_path / "b.h5")
    assert surf(BASE + ["--model", digits_ckpt, "--x=-1:1:3", "--out", a], capsys)[0] == 0
    assert surf(BASE + ["--model", digits_ckpt, "--x", "-1:1:3", "--out", b], capsys)[0] == 0
    with h5py.File(a) as fa, h5py.File(b) as fb:
        assert fa["train_loss"].shape == (3,) and "ycoordinates" not in fa
        np.testing.assert_array_equal(fa["train_loss"][()], fb["train_loss"][()])
        assert "--x -1:1:3" in fb.attrs["command"] or "--x=-1:1:3" in fb.attrs["command"]
    code = plot_cli.main([a, "--log", "--formats", "png"])
    assert code == 0 and (tmp_path / "a_1d.png").stat().st_size > 1000


def test_plot_options(tmp_path, digits_ckpt, capsys):
    s = str(tmp_path / "s.h5")
    assert surf(BASE + ["--model", digits_ckpt, "--x=-1:1:4", "--y=-1:1:3", "--out", s],
                capsys)[0] == 0
    code = plot_cli.main([s, "--kinds", "contour,heatmap", "--formats", "png", "--vmax", "50",
                          "--levels", "10", "--quantity", "acc", "--out", str(tmp_path / "fig")])
    assert code == 0
    assert sorted(p.name for p in tmp_path.glob("fig_*")) == ["fig_train_acc_contour.png",
                                                              "fig_train_acc_heatmap.png"]  # its quantity named


def test_an_existing_file_of_another_configuration_is_refused_and_kept(tmp_path, digits_ckpt,
                                                                       capsys):
    out = str(tmp_path / "s.h5")
    assert surf(BASE + ["--model", digits_ckpt, "--x=-1:1:3", "--out", out], capsys)[0] == 0
    before = open(out, "rb").read()
    code, _, err = surf(BASE + ["--model", digits_ckpt, "--x=-1:1:3", "--seed", "9",
                                "--out", out], capsys)
    assert_user_error(code, err, "another configuration", "directions differ", "--overwrite")
    code, _, err = surf(BASE + ["--model", digits_ckpt, "--x=-1:1:5", "--out", out], capsys)
    assert_user_error(code, err, "another configuration")
    assert open(out, "rb").read() == before
    code, _, err = surf(BASE + ["--model", digits_ckpt, "--x=-1:1:3", "--seed", "9",
                                "--out", out, "--overwrite"], capsys)
    assert code == 0, err
    with h5py.File(out) as f:
        assert f.attrs["seed"] == 9


def test_a_directions_file_of_other_surfaces_is_not_replaced(tmp_path, digits_ckpt, capsys):
    out = str(tmp_path / "s.h5")
    assert surf(BASE + ["--model", digits_ckpt, "--x=-1:1:3", "--out", out], capsys)[0] == 0
    os.remove(out)  # the surface goes, its directions stay (other surfaces may share them)
    dirs = tmp_path / "s.dirs.h5"
    before = dirs.read_bytes()
    code, _, err = surf(BASE + ["--model", digits_ckpt, "--x=-1:1:3", "--seed", "4", "--out", out],
                        capsys)
    assert_user_error(code, err, "holds other directions", "--overwrite")
    assert dirs.read_bytes() == before and not os.path.exists(out)


def test_whole_pickled_module_needs_the_explicit_opt_in(tmp_path, capsys):
    from landscape.models import build_model

    path = tmp_path / "whole.pt"
    torch.save(build_model("digits_cnn", num_classes=10, in_channels=1), path)
    args = BASE + ["--model", str(path), "--x=-1:1:3", "--out", str(tmp_path / "s.h5")]
    code, _, err = surf(args, capsys)
    assert_user_error(code, err, "--unsafe-pickle")
    assert not (tmp_path / "s.h5").exists()
    assert surf(args + ["--unsafe-pickle"], capsys)[0] == 0


@pytest.fixture
def bad_inputs(tmp_path):
    (tmp_path / "notes.txt").write_text("not a checkpoint")
    torch.save({"fc.weight": torch.zeros(10, 32), "extra.weight": torch.zeros(3)},
               tmp_path / "partial.pt")
    (tmp_path / "empty_cifar").mkdir()
    from landscape.directions.sampling import random_directions
    from landscape.io.directions_file import save_directions
    from landscape.models import build_model
    from landscape.space.params import snapshot

    net = build_model("digits_cnn", num_classes=10, in_channels=1)
    save_directions(tmp_path / "states.h5", random_directions(snapshot(net, "states"), 2),
                    {"dir_type": "states"})
    torch.save(build_model("mlp", num_classes=10, in_channels=1).state_dict(), tmp_path / "mlp.pt")
    return tmp_path


@pytest.mark.parametrize("args,fragments", [
    (["--model", "{t}/missing.pt", "--arch", "digits_cnn"], ["does not exist"]),
    (["--model", "{t}/notes.txt", "--arch", "digits_cnn"], ["not a", "checkpoint"]),
    (["--model", "{t}/partial.pt", "--arch", "digits_cnn"],
     ["does not fit", "missing keys: features.0.weight", "unexpected keys: extra.weight"]),
    (["--model", "{ckpt}", "--arch", "digits_cnn", "--x=1:-1:5"], ["grid spec"]),
    (["--model", "{ckpt}", "--arch", "digits_cnn", "--x", "-1:1"], ["grid spec"]),
    (["--model", "{ckpt}", "--arch", "digits_cnn", "--dataset", "imagenet"],
     ["unknown dataset 'imagenet'"]),
    (["--model", "{ckpt}", "--arch", "resnet9000"], ["unknown architecture 'resnet9000'"]),
    (["--model", "{ckpt}", "--arch", "digits_cnn", "--dataset", "cifar10", "--data-root",
      "{t}/empty_cifar"], ["missing", "data_batch_1"]),
    (["--model", "{ckpt}", "--arch", "digits_cnn", "--out", "{t}/no/such/dir/s.h5"],
     ["does not exist"]),
    (["--model", "{ckpt}", "--arch", "digits_cnn", "--out", "{t}/notes.txt/s.h5"],
     ["does not exist"]),
    (["--model", "{ckpt}"], ["architecture is needed"]),
    (["--model", "{ckpt}", "--arch", "digits_cnn", "--norm", "unit"], ["invalid choice"]),
    (["--model", "{ckpt}", "--arch", "digits_cnn", "--directions", "{t}/notes.txt"],
     ["not a readable HDF5"]),
    (["--model", "{ckpt}", "--arch", "digits_cnn", "--device", "cuda:3"], ["CUDA"]),
    (["--model", "{ckpt}", "--arch", "digits_cnn", "--threads", "-1"], ["--threads", "positive"]),
    (["--model", "{ckpt}", "--arch", "digits_cnn", "--samples", "0"], ["--samples"]),
    (["--model", "{ckpt}", "--arch", "digits_cnn", "--metrics", "loss,eig", "--eig-tol", "0"],
     ["--eig-tol", "positive number"]),
    (["--model", "{ckpt}", "--arch", "digits_cnn", "--x=0:0:1", "--y=-1:1:3"], ["2D grid needs"]),
    (["--model", "{ckpt}", "--arch", "digits_cnn", "--model2", "{ckpt}", "--directions",
      "{t}/states.h5"], ["directions from a file exclude a second model"]),
    (["--model", "{ckpt}", "--arch", "digits_cnn", "--directions", "{t}/states.h5", "--x=-1:1:3"],
     ["made with dir_type states"]),
    (["--model", "{t}/mlp.pt", "--arch", "mlp", "--dataset", "synthetic", "--synthetic-shape",
      "1,28,28"], ["does not accept the inputs of shape (1, 28, 28)"]),
    (["--x=-1:1:3", "--y=-1:1:3", "--out", "{t}/notes.txt/s.h5"], ["cannot create the folder"]),
])
def test_bad_input_is_one_line_and_exit_2(bad_inputs, args, fragments, capsys):
    t = str(bad_inputs)
    ckpt = save_digits_cnn(bad_inputs / "ok.pt")
    argv = [a.format(t=t, ckpt=ckpt) for a in args]
    if "--out" not in argv:
        argv += ["--out", f"{t}/s.h5"]
    code, _, err = surf(argv + ["--samples", "50", "--no-progress"], capsys)
    assert_user_error(code, err, *fragments)
    assert not os.path.exists(f"{t}/s.h5")


def test_plot_bad_input(tmp_path, capsys):
    (tmp_path / "x.h5").write_text("nope")
    assert plot_cli.main([str(tmp_path / "missing.h5")]) == 2
    assert plot_cli.main([str(tmp_path / "x.h5")]) == 2
    assert plot_cli.main([str(tmp_path / "x.h5"), "--kinds", "pie"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 3 and all(line.startswith("landscape-plot: error:") for line in err)
    assert "does not exist" in err[0] and "not a readable HDF5" in err[1] and "--kinds" in err[2]


def write_path_file(path) -> None:
    """A landscape-traj file: two directions of digits_cnn and a path from (-0.5, 0.3) to 0."""
    from landscape.directions.sampling import random_directions
    from landscape.io.trajectory_file import Trajectory, write_trajectory
    from landscape.models import build_model
    from landscape.space.params import snapshot

    model = build_model("digits_cnn", num_classes=10, in_channels=1)
    dirs = random_directions(snapshot(model), 2, seed=0)
    traj = Trajectory(directions=dirs, xcoord=np.array([-0.5, 0.0]), ycoord=np.array([0.3, 0.0]),
                      explained_variance_ratio=np.array([0.8, 0.15]), residual=np.zeros(2),
                      checkpoints=["m1.pt", "m2.pt"], epochs=np.array([1, 2]),
                      explained_variance=np.array([2.0, 0.4]), attrs={})
    write_trajectory(path, traj)


def test_grid_defaults_to_cover_the_path_of_a_trajectory_file(tmp_path, digits_ckpt, capsys):
    write_path_file(tmp_path / "pca.h5")
    out = str(tmp_path / "s.h5")
    code, _, err = surf(BASE + ["--model", digits_ckpt, "--directions", str(tmp_path / "pca.h5"),
                                "--out", out], capsys)
    assert code == 0, err
    with h5py.File(out) as f:
        x, y = f["xcoordinates"][()], f["ycoordinates"][()]
    assert len(x) == len(y) == PATH_GRID_POINTS
    assert x[0] < -0.5 and x[-1] > 0.0 and y[0] < 0.0 and y[-1] > 0.3  # path and margin inside


def test_plot_html_vtk_compare_and_trajectory_views(tmp_path, digits_ckpt, capsys):
    a, b = str(tmp_path / "a.h5"), str(tmp_path / "b.h5")
    for path, seed in ((a, "0"), (b, "1")):
        code, _, err = surf(BASE + ["--model", digits_ckpt, "--x=-1:1:4", "--y=-1:1:3", "--seed", seed,
                                    "--out", path], capsys)
        assert code == 0, err
    assert plot_cli.main([a, "--html", "--vtk"]) == 0
    html = (tmp_path / "a.html").read_text()
    assert "plotly" in html and "<script src=\"http" not in html
    assert (tmp_path / "a.vts").read_text().startswith("<?xml")
    assert not (tmp_path / "a_contour.png").exists()  # other views only, unless --static
    assert plot_cli.main([a, b, "--compare", "--kinds", "contour,3d", "--formats", "png",
                          "--out", str(tmp_path / "cmp")]) == 0
    assert sorted(p.name for p in tmp_path.glob("cmp_*")) == ["cmp_contour.png"]

    write_path_file(tmp_path / "pca.h5")
    t = str(tmp_path / "t.h5")  # a path is drawn over a surface of its own directions (issue 24.3)
    code, _, err = surf(BASE + ["--model", digits_ckpt, "--directions", str(tmp_path / "pca.h5"), "--x=-1:1:4",
                                "--y=-1:1:3", "--out", t], capsys)
    assert code == 0, err
    assert plot_cli.main([t, "--trajectory", str(tmp_path / "pca.h5"), "--formats", "png"]) == 0
    assert (tmp_path / "t_trajectory.png").stat().st_size > 1000
    capsys.readouterr()
    assert plot_cli.main([a, "--trajectory", str(tmp_path / "pca.h5"), "--formats", "png"]) == 2
    assert "not computed on the directions" in capsys.readouterr().err
    assert plot_cli.main([a, "--trajectory", str(tmp_path / "missing.h5")]) == 2
    assert "does not exist" in capsys.readouterr().err
