"""PCA directions of a training path: scikit-learn's PCA, exact planes, the file, the CLI."""

from __future__ import annotations

import os

import numpy as np
import pytest
import torch
from helpers import train_mlp
from sklearn.decomposition import PCA
from torch import nn

from landscape.cli.traj import main
from landscape.directions.pca import expand_checkpoints, pca_directions
from landscape.errors import LandscapeError
from landscape.io.directions_file import load_directions
from landscape.io.trajectory_file import path_extent, read_trajectory, write_trajectory
from landscape.models import build_model
from landscape.space.params import Mover, snapshot


def small_net() -> nn.Module:
    torch.manual_seed(0)
    return nn.Sequential(nn.Linear(4, 6), nn.BatchNorm1d(6), nn.ReLU(), nn.Linear(6, 3))


def random_walk(tmp_path, n: int = 8, seed: int = 1) -> tuple[list[str], list[dict]]:
    """``n`` checkpoints of a random walk of every float tensor (BatchNorm statistics too)."""
    net = small_net()
    g = torch.Generator().manual_seed(seed)
    paths, states = [], []
    for e in range(n):
        with torch.no_grad():
            for v in net.state_dict().values():
                if v.is_floating_point():
                    v += 0.2 * torch.randn(v.shape, generator=g) + 0.05 * e
        sd = {k: v.clone() for k, v in net.state_dict().items()}
        path = str(tmp_path / f"model_{e}.pt")
        torch.save({"state_dict": sd, "epoch": e}, path)
        paths.append(path)
        states.append(sd)
    return paths, states


def reference_matrix(states: list[dict], names: list[str]) -> np.ndarray:
    """Rows ``theta_i - theta_final`` over ``names``, built directly from the state dicts."""
    final = states[-1]
    return np.stack([
        np.concatenate([(sd[k].double() - final[k].double()).numpy().ravel() for k in names])
        for sd in states
    ])


def flat(direction: dict, names: list[str]) -> np.ndarray:
    return np.concatenate([direction[k].double().numpy().ravel() for k in names])


# Written down from the architecture: the 2-D weights are what ignore="biasbn" keeps.
WEIGHTS_2D = ["0.weight", "3.weight"]
PARAMS = ["0.weight", "0.bias", "1.weight", "1.bias", "3.weight", "3.bias"]
FLOAT_STATES = PARAMS[:4] + ["1.running_mean", "1.running_var"] + PARAMS[4:]


@pytest.mark.parametrize("dir_type, ignore, names", [
    ("weights", "biasbn", WEIGHTS_2D),
    ("weights", "none", PARAMS),
    ("states", "none", FLOAT_STATES),
])
def test_directions_and_variance_equal_sklearn_pca(tmp_path, dir_type, ignore, names):
    paths, states = random_walk(tmp_path)
    traj = pca_directions(paths, paths[-1], small_net(), dir_type, ignore)
    x = reference_matrix(states, names)
    pca = PCA(n_components=2, svd_solver="full").fit(x)
    for k in range(2):
        ours = flat(traj.directions[k], names)
        sign = np.sign(ours @ pca.components_[k])
        np.testing.assert_allclose(sign * ours, pca.components_[k], atol=1e-6)
    ratio = pca.explained_variance_ratio_
    np.testing.assert_allclose(traj.explained_variance_ratio, ratio, rtol=1e-6)
    np.testing.assert_allclose(traj.explained_variance, pca.explained_variance_, rtol=1e-6)
    # everything outside ``names`` is a zero direction, and the names are the model's own
    expected = PARAMS if dir_type == "weights" else list(small_net().state_dict())
    assert list(traj.directions[0]) == expected
    for k in set(expected) - set(names):
        assert not traj.directions[0][k].any() and not traj.directions[1][k].any()


def test_projection_is_least_squares_with_its_residual(tmp_path):
    paths, states = random_walk(tmp_path, n=9)
    traj = pca_directions(paths, paths[-1], small_net())
    x = reference_matrix(states, WEIGHTS_2D)
    a = np.stack([flat(d, WEIGHTS_2D) for d in traj.directions], axis=1)
    coords, *_ = np.linalg.lstsq(a, x.T, rcond=None)
    np.testing.assert_allclose(traj.xcoord, coords[0], atol=1e-5)
    np.testing.assert_allclose(traj.ycoord, coords[1], atol=1e-5)
    left = np.linalg.norm(x.T - a @ np.stack([traj.xcoord, traj.ycoord]), axis=0)
    np.testing.assert_allclose(traj.residual, left, atol=1e-5)
    assert traj.residual.max() > 0.1  # a random walk in 42 dimensions is not flat
    assert (traj.xcoord[-1], traj.ycoord[-1]) == pytest.approx((0.0, 0.0), abs=1e-9)


def test_path_in_a_plane_is_reconstructed_exactly(tmp_path):
    net = small_net()
    final = {k: v.clone() for k, v in net.state_dict().items()}
    g = torch.Generator().manual_seed(3)
    u = {k: torch.randn(final[k].shape, generator=g) for k in WEIGHTS_2D}
    w = {k: torch.randn(final[k].shape, generator=g) for k in WEIGHTS_2D}
    ab = [(3.0 * np.cos(t), 1.5 * np.sin(2 * t)) for t in np.linspace(0.2, 3.0, 10)] + [(0.0, 0.0)]
    paths = []
    for e, (a, b) in enumerate(ab):
        sd = {k: v.clone() for k, v in final.items()}
        for k in WEIGHTS_2D:
            sd[k] += a * u[k] + b * w[k]
        paths.append(str(tmp_path / f"model_{e}.pt"))
        torch.save(sd, paths[-1])
    traj = pca_directions(paths, paths[-1], net)
    assert traj.explained_variance_ratio.sum() == pytest.approx(1.0, abs=1e-9)
    assert traj.residual.max() < 1e-5
    # moving the model to (x_i, y_i) along the saved directions lands on checkpoint i
    write_trajectory(tmp_path / "t.h5", traj)
    dirs, _ = load_directions(tmp_path / "t.h5")
    net.load_state_dict(final)
    mover = Mover(net, snapshot(net), dirs)
    for i, (a, b) in enumerate(ab):
        mover.move_([traj.xcoord[i], traj.ycoord[i]])
        for k in WEIGHTS_2D:
            target = final[k] + a * u[k] + b * w[k]
            moved = dict(net.named_parameters())[k].data
            torch.testing.assert_close(moved, target, atol=2e-5, rtol=0)


def test_small_cache_streams_the_same_result(tmp_path):
    paths, _ = random_walk(tmp_path, n=7)
    whole = pca_directions(paths, paths[-1], small_net())
    row_bytes = 4 * (6 * 4 + 3 * 6)
    for cache in (row_bytes, 3 * row_bytes):  # blocks of 1 and of 3 checkpoints
        part = pca_directions(paths, paths[-1], small_net(), cache_bytes=cache)
        for k in range(2):
            for name in PARAMS:
                torch.testing.assert_close(part.directions[k][name], whole.directions[k][name])
        np.testing.assert_allclose(part.xcoord, whole.xcoord, atol=1e-9)
        np.testing.assert_allclose(part.residual, whole.residual, atol=1e-9)


def test_file_round_trip(tmp_path):
    paths, _ = random_walk(tmp_path)
    traj = pca_directions(paths, paths[-1], small_net())
    write_trajectory(tmp_path / "t.h5", traj)
    back = read_trajectory(tmp_path / "t.h5")
    for k in range(2):
        assert list(back.directions[k]) == PARAMS
        for name in PARAMS:
            torch.testing.assert_close(back.directions[k][name], traj.directions[k][name])
    for field in ("xcoord", "ycoord", "explained_variance_ratio", "residual", "epochs"):
        np.testing.assert_array_equal(getattr(back, field), getattr(traj, field))
    assert back.checkpoints == [os.path.abspath(p) for p in paths]
    assert back.attrs["model"] == os.path.abspath(paths[-1])
    assert len(back.attrs["model_sha256"]) == 64
    assert (back.attrs["dir_type"], back.attrs["ignore"]) == ("weights", "biasbn")
    import h5py

    with h5py.File(tmp_path / "t.h5") as f:  # the original tool's names
        np.testing.assert_array_equal(f["proj_xcoord"][()], traj.xcoord)
        np.testing.assert_array_equal(f["proj_ycoord"][()], traj.ycoord)


def test_path_extent_covers_path_and_origin(tmp_path):
    paths, _ = random_walk(tmp_path)
    traj = pca_directions(paths, paths[-1], small_net())
    xmin, xmax, ymin, ymax = path_extent(traj, margin=0.25)
    xs, ys = np.append(traj.xcoord, 0), np.append(traj.ycoord, 0)
    pad = 0.25 * max(np.ptp(xs), np.ptp(ys))
    assert (xmin, xmax, ymin, ymax) == pytest.approx((xs.min() - pad, xs.max() + pad,
                                                      ys.min() - pad, ys.max() + pad))


def test_checkpoints_sort_naturally(tmp_path):
    for e in (10, 2, 1, 0, 21):
        (tmp_path / f"model_{e}.pt").write_bytes(b"")
    (tmp_path / "other.txt").write_bytes(b"")
    found = expand_checkpoints([str(tmp_path / "model_*.pt"), str(tmp_path / "model_2.pt")])
    assert [os.path.basename(p) for p in found] == [
        "model_0.pt", "model_1.pt", "model_2.pt", "model_10.pt", "model_21.pt"]
    with pytest.raises(LandscapeError, match="no checkpoint file matches"):
        expand_checkpoints(str(tmp_path / "nothing_*.pt"))


def test_too_few_or_collinear_checkpoints_are_refused(tmp_path):
    paths, states = random_walk(tmp_path, n=3)
    with pytest.raises(LandscapeError, match="at least 3"):
        pca_directions(paths[:2], paths[-1], small_net())
    for e in range(3):  # three points on one line through the final model
        sd = {k: v.clone() for k, v in states[-1].items()}
        sd["0.weight"] += float(e)
        torch.save(sd, paths[e])
    with pytest.raises(LandscapeError, match="two dimensions"):
        pca_directions(paths, paths[-1], small_net())


# --- landscape-traj ---------------------------------------------------------------------------


def test_cli_happy_path(tmp_path, capsys):
    train_mlp(tmp_path)
    out = tmp_path / "pca.h5"
    rc = main(["--checkpoints", str(tmp_path / "model_*.pt"), "--final",
               str(tmp_path / "model_11.pt"), "--arch", "mlp", "--out", str(out)])
    captured = capsys.readouterr()
    assert rc == 0, captured.err
    assert "1st PC" in captured.out and str(out) in captured.out
    traj = read_trajectory(out)
    assert traj.epochs.tolist() == list(range(12))
    assert traj.attrs["arch"] == "mlp"
    assert traj.explained_variance_ratio[0] >= traj.explained_variance_ratio[1] > 0
    # the output is a directions file landscape-surf can move the mlp with
    model = build_model("mlp", num_classes=10, in_channels=1)
    dirs, _ = load_directions(out)
    Mover(model, snapshot(model), dirs)
    assert main(["--checkpoints", str(tmp_path / "model_*.pt"), "--final",
                 str(tmp_path / "model_11.pt"), "--arch", "mlp", "--out", str(out)]) == 2
    assert "--overwrite" in capsys.readouterr().err


def one_error_line(capsys) -> str:
    err = capsys.readouterr().err
    assert "Traceback" not in err
    lines = err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("landscape-traj: error:"), err
    return lines[0]


@pytest.mark.parametrize("case, expected", [
    ("no match", "no checkpoint file matches"),
    ("two checkpoints", "at least 3"),
    ("other architecture", "does not fit"),
    ("bare state dicts", "does not fit"),
    ("missing final", "does not exist"),
])
def test_cli_errors(tmp_path, capsys, case, expected):
    train_mlp(tmp_path, steps=4, meta=case != "bare state dicts")
    pattern = {"no match": "ckpt_*.pt", "two checkpoints": "model_[23].pt"}.get(case, "model_*.pt")
    arch = "lenet" if case == "other architecture" else "mlp"
    final = "model_99.pt" if case == "missing final" else "model_3.pt"
    rc = main(["--checkpoints", str(tmp_path / pattern), "--final", str(tmp_path / final),
               "--arch", arch, "--out", str(tmp_path / "pca.h5")])
    assert rc == 2
    assert expected in one_error_line(capsys)
    assert not (tmp_path / "pca.h5").exists()
