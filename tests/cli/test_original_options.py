"""The original tool's options: projecting a run onto given directions (plot_trajectory.py
--dir_file), the VTK export interpolated to N x N (h52vtp.py --interp), the signed eigenvalue
ratio, and the PCA file of a projection file named explicitly (plot_2D.py --dir_file)."""

from __future__ import annotations

import h5py
import numpy as np
import torch
from helpers import make_surface, read_vts, train_mlp

from landscape.cli import plot as plot_cli
from landscape.cli import traj as traj_cli
from landscape.io.directions_file import save_directions
from landscape.io.surface_file import write_surface
from landscape.io.trajectory_file import pc_labels, read_trajectory
from landscape.models import build_model
from landscape.plot.vtk import write_vtk


def test_traj_projects_onto_given_directions_by_least_squares(tmp_path, capsys):
    train_mlp(tmp_path, steps=6)
    model = build_model("mlp", num_classes=10, in_channels=1)
    names = [n for n, _ in model.named_parameters()]
    g = torch.Generator().manual_seed(5)
    dirs = [{n: torch.randn(p.shape, generator=g) for n, p in model.named_parameters()} for _ in range(2)]
    save_directions(tmp_path / "dirs.h5", dirs, {"dir_type": "weights"})
    out = tmp_path / "path.h5"
    assert traj_cli.main(["--checkpoints", str(tmp_path / "model_*.pt"), "--final", str(tmp_path / "model_5.pt"),
                          "--arch", "mlp", "--directions", str(tmp_path / "dirs.h5"), "--out", str(out)]) == 0
    assert "projected onto the directions" in capsys.readouterr().out
    traj = read_trajectory(out)
    # reference: numpy least squares over the 2-D weights (ignore=biasbn), from the files themselves
    kept = [n for n in names if dirs[0][n].dim() > 1]
    final = torch.load(tmp_path / "model_5.pt", weights_only=True)["state_dict"]
    a = np.stack([np.concatenate([d[n].double().numpy().ravel() for n in kept]) for d in dirs], axis=1)
    for i in range(6):
        sd = torch.load(tmp_path / f"model_{i}.pt", weights_only=True)["state_dict"]
        v = np.concatenate([(sd[n].double() - final[n].double()).numpy().ravel() for n in kept])
        c, *_ = np.linalg.lstsq(a, v, rcond=None)
        np.testing.assert_allclose([traj.xcoord[i], traj.ycoord[i]], c, rtol=1e-6, atol=1e-9)
        np.testing.assert_allclose(traj.residual[i], np.linalg.norm(v - a @ c), rtol=1e-6, atol=1e-9)
    # the file's directions are the given ones: a surface on it has the path in its own axes
    for k in range(2):
        for n in names:
            torch.testing.assert_close(traj.directions[k][n], dirs[k][n])
    assert pc_labels(traj)[0].startswith("direction 1") and traj.attrs["method"] == "directions"
    assert 0 < traj.explained_variance_ratio.sum() <= 1 + 1e-9


def test_traj_directions_that_do_not_fit_are_one_line(tmp_path, capsys):
    train_mlp(tmp_path, steps=4)
    save_directions(tmp_path / "one.h5", [{"w": torch.zeros(3)}])
    code = traj_cli.main(["--checkpoints", str(tmp_path / "model_*.pt"), "--final", str(tmp_path / "model_3.pt"),
                          "--arch", "mlp", "--directions", str(tmp_path / "one.h5"), "--out", str(tmp_path / "p.h5")])
    err = capsys.readouterr().err
    assert code == 2 and len(err.strip().splitlines()) == 1 and "Traceback" not in err
    assert not (tmp_path / "p.h5").exists()


def quadratic(n: int = 5):
    x, y = np.linspace(-1, 1, n), np.linspace(-2, 2, n)
    xx, yy = np.meshgrid(x, y)
    return make_surface([x, y], {"train_loss": 1 + xx**2 + 0.5 * yy**2, "train_acc": 50 + 10 * xx})


def test_vtk_export_interpolated_to_n_by_n(tmp_path, capsys):
    write_vtk(quadratic(), tmp_path / "s.vts", interp=9)
    _, dims, pts, arrays = read_vts(tmp_path / "s.vts")
    assert dims == [9, 9, 1]
    loss = arrays["train_loss"]
    np.testing.assert_allclose(loss, 1 + pts[:, 0] ** 2 + 0.5 * pts[:, 1] ** 2, atol=1e-9)  # cubic: exact here
    assert pts[:, 0].min() == -1 and pts[:, 1].max() == 2
    path = str(tmp_path / "q.h5")
    write_surface(path, quadratic())
    assert plot_cli.main([path, "--vtk", "--interp", "11"]) == 0
    assert plot_cli.main([path, "--interp", "11"]) == 2  # only for the VTK file
    assert "--vtk" in capsys.readouterr().err


def test_the_signed_eigenvalue_ratio(tmp_path):
    x, y = np.linspace(-1, 1, 4), np.linspace(-1, 1, 3)
    mx = np.full((3, 4), 2.0)
    mn = np.array([[-1.0, 0.5, 1.0, -0.2]] * 3)
    s = make_surface([x, y], {"train_loss": 1 + 0 * mx, "max_eig": mx, "min_eig": mn})
    np.testing.assert_array_equal(s.quantity("eig_ratio_signed"), mn / mx)
    np.testing.assert_array_equal(s.quantity("eig_ratio"), np.abs(mn / mx))
    assert "eig_ratio_signed" in s.available() and s.label("eig_ratio_signed") == "min eig / max eig"
    path = str(tmp_path / "e.h5")
    write_surface(path, s)
    assert plot_cli.main([path, "--quantity", "eig_ratio_signed", "--formats", "png", "--kinds", "contourf"]) == 0


def test_the_pca_file_of_a_projection_file_named_explicitly(tmp_path, capsys):
    proj, dirs = tmp_path / "path_projection.h5", tmp_path / "pca_directions.h5"
    with h5py.File(proj, "w") as f:  # the original tool's projection file, renamed
        f["proj_xcoord"] = np.array([1.0, 0.5, 0.0])
        f["proj_ycoord"] = np.array([0.3, 0.1, 0.0])
    with h5py.File(dirs, "w") as f:
        f["explained_variance_ratio_"] = np.array([0.7, 0.2])
    assert np.isnan(read_trajectory(proj, directions=False).explained_variance_ratio).all()
    traj = read_trajectory(proj, directions=False, directions_file=dirs)
    np.testing.assert_array_equal(traj.explained_variance_ratio, [0.7, 0.2])
    assert pc_labels(traj) == ("1st PC: 70.0 %", "2nd PC: 20.0 %")
    path = str(tmp_path / "q.h5")
    write_surface(path, quadratic())
    code = plot_cli.main([path, "--trajectory", str(proj), "--dir-file", str(tmp_path / "missing.h5")])
    err = capsys.readouterr().err
    assert code == 2 and "does not exist" in err and len(err.strip().splitlines()) == 1
    assert plot_cli.main([path, "--dir-file", str(dirs)]) == 2  # names the PCA of a trajectory
