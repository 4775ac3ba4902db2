"""Mode-connecting curves (landscape.connect, landscape-connect): the curve's formulas against hand
computation, its file, training on two digits networks from different seeds (the curve's barrier
against the straight line's), the commands and their errors, MPI against serial."""

from __future__ import annotations

import os
import subprocess
import sys

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from landscape import connect
from landscape.errors import LandscapeError
from landscape.evaluation.options import EvalOptions
from landscape.jobs.connect import read_curve
from landscape.models import build_model
from landscape.training import OptimizerConfig

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def _states(seed_a=0, seed_b=1, arch="digits_cnn"):
    torch.manual_seed(seed_a)
    a = build_model(arch, num_classes=10, in_channels=1)
    torch.manual_seed(seed_b)
    b = build_model(arch, num_classes=10, in_channels=1)
    return a, b


def _fit(seed: int, data, epochs: int = 10):
    """A digits MLP trained from ``seed`` (Adam, batches of 64)."""
    torch.manual_seed(seed)
    model = build_model("mlp", num_classes=10, in_channels=1)
    opt = torch.optim.Adam(model.parameters(), lr=3e-3)
    g = torch.Generator().manual_seed(seed)
    for _ in range(epochs):
        for idx in torch.randperm(len(data), generator=g).split(64):
            opt.zero_grad()
            F.cross_entropy(model(data.x[idx]), data.y[idx]).backward()
            opt.step()
    return model.eval()


@pytest.fixture(scope="module")
def digits():
    from landscape.data.datasets import load_dataset

    return load_dataset("digits", split="train"), load_dataset("digits", split="test")


@pytest.fixture(scope="module")
def minima(digits):
    """Two digits MLPs trained from different seeds."""
    return _fit(0, digits[0]), _fit(1, digits[0])


@pytest.fixture(scope="module")
def ends(minima, tmp_path_factory):
    folder = tmp_path_factory.mktemp("ends")
    paths = []
    for k, m in enumerate(minima):
        p = folder / f"mlp_{k}.pt"
        torch.save({"state_dict": m.state_dict(), "arch": "mlp"}, p)
        paths.append(str(p))
    return paths


# ------------------------------------------------------------------------------ the curve itself


@pytest.mark.parametrize("kind", connect.KINDS)
def test_ends_exact(kind):
    a, b = _states()
    curve = connect.Curve.between(a, b, kind)
    with torch.no_grad():  # a bend away from the midpoint: the ends must not depend on it
        curve.bend = {k: v + 0.37 for k, v in curve.bend.items()}
    for t, end in ((0, a), (1, b), (0.0, a), (1.0, b)):
        theta = curve.theta(t)
        assert list(theta) == list(end.state_dict())
        for k, v in end.state_dict().items():
            assert theta[k].dtype == v.dtype and torch.equal(theta[k], v), k
    assert torch.equal(curve.line(0)["fc.weight"], a.fc.weight) and torch.equal(curve.line(1)["fc.weight"], b.fc.weight)


def test_formulas_by_hand():
    a, bend, b = {"w": torch.tensor([1.0, -2.0])}, {"w": torch.tensor([10.0, 4.0])}, {"w": torch.tensor([3.0, 0.0])}
    bez = connect.Curve(a, b, bend, "bezier")
    poly = connect.Curve(a, b, bend, "polychain")
    # Bezier at t = 1/4: 9/16 a + 6/16 bend + 1/16 b
    assert torch.allclose(bez.theta(0.25)["w"], torch.tensor([9 / 16 + 60 / 16 + 3 / 16, -18 / 16 + 24 / 16]))
    # at t = 1/2: a/4 + bend/2 + b/4
    assert torch.allclose(bez.theta(0.5)["w"], torch.tensor([0.25 + 5 + 0.75, -0.5 + 2]))
    # polychain: halfway from a to the bend at t = 1/4, the bend at 1/2, halfway to b at 3/4
    assert torch.allclose(poly.theta(0.25)["w"], torch.tensor([5.5, 1.0]))
    assert torch.allclose(poly.theta(0.5)["w"], torch.tensor([10.0, 4.0]))
    assert torch.allclose(poly.theta(0.75)["w"], torch.tensor([6.5, 2.0]))
    assert torch.allclose(bez.line(0.25)["w"], torch.tensor([1.5, -1.5]))
    # the bend starts at the midpoint
    assert torch.equal(connect.Curve(a, b).bend["w"], torch.tensor([2.0, -1.0]))


def test_bad_t_and_ends():
    a, b = _states()
    curve = connect.Curve.between(a, b)
    for t in (-0.1, 1.5, float("nan")):
        with pytest.raises(LandscapeError, match=r"t must lie in \[0, 1\]"):
            curve.theta(t)
    with pytest.raises(LandscapeError, match=r"t must lie in \[0, 1\]"):
        connect.t_values([0.0, 0.5, 1.2])
    mlp = build_model("mlp", num_classes=10, in_channels=1)
    with pytest.raises(LandscapeError, match="one architecture"):
        connect.Curve.between(a, mlp)
    with pytest.raises(LandscapeError, match="one architecture"):
        connect.Curve(a.state_dict(), mlp.state_dict())
    wide = build_model("mlp", num_classes=10, in_channels=1)
    sd = dict(wide.state_dict())
    sd["net.1.weight"] = torch.zeros(64, 64)
    with pytest.raises(LandscapeError, match="differ in shape"):
        connect.Curve(mlp.state_dict(), sd)


def test_save_load_weights_only(tmp_path):
    a, b = _states()
    curve = connect.Curve.between(a, b, "polychain", meta={"arch": "digits_cnn", "num_classes": 10, "in_channels": 1,
                                                         "training": {"lr": 0.1}})
    curve.bend = {k: v * 1.5 for k, v in curve.bend.items()}
    path = curve.save(tmp_path / "c.pt")
    raw = torch.load(path, weights_only=True)  # plain tensors and values only
    assert raw["kind"] == "polychain" and raw["training"] == {"lr": 0.1}
    loaded = connect.load_curve(path)
    assert loaded.kind == "polychain" and loaded.checksum() == curve.checksum()
    for t in (0.0, 0.3, 0.5, 0.8, 1.0):
        for k, v in curve.theta(t).items():
            assert torch.equal(loaded.theta(t)[k], v)
    assert loaded.model is None  # the library builds no network; the commands build the one it records:
    built = read_curve(str(path)).network()
    assert type(built) is type(a) and all(torch.equal(v, curve.a[k]) for k, v in built.state_dict().items())
    raw["bend"]["fc.bias"] = raw["bend"]["fc.bias"] + 1  # a damaged file is refused
    torch.save(raw, tmp_path / "bad.pt")
    with pytest.raises(LandscapeError, match="damaged"):
        connect.load_curve(tmp_path / "bad.pt")


def test_barrier_by_hand():
    assert connect.barrier(np.array([1.0, 3.0, 2.0, 0.5])) == pytest.approx(3.0 - 0.75)
    assert connect.barrier(np.array([1.0, 0.5, 1.0])) == pytest.approx(0.0)  # a valley: no barrier
    assert np.isnan(connect.barrier(np.array([1.0, np.nan, 1.0])))


def test_plane_is_exact():
    a, b = _states()
    curve = connect.Curve.between(a, b, "bezier")
    g = torch.Generator().manual_seed(3)
    curve.bend = {k: v + 0.05 * torch.randn(v.shape, generator=g) for k, v in curve.bend.items()}
    (dx, dy), (xb, yb) = connect.plane_directions(curve)
    names = list(curve.params)
    u = torch.cat([dx[k].ravel() for k in names]).double().numpy()
    v = torch.cat([dy[k].ravel() for k in names]).double().numpy()
    assert abs(u @ v) < 1e-4 * (u @ u) and np.linalg.norm(v) == pytest.approx(np.linalg.norm(u), rel=1e-5)
    path = connect.plane_path(curve, points=7)
    basis = np.stack([u, v], 1)
    for t, x, y in zip(path.t, path.x, path.y, strict=True):  # least squares on theta(t) - a
        theta = curve.theta(float(t))
        rhs = torch.cat([(theta[k] - curve.a[k]).ravel() for k in names]).double().numpy()
        (cx, cy), *_ = np.linalg.lstsq(basis, rhs, rcond=None)
        assert (cx, cy) == pytest.approx((x, y), abs=1e-4)
    assert path.bend == pytest.approx((xb, yb)) and yb > 0


# ------------------------------------------------------------------------------------ training


def test_trained_curve_beats_the_line(minima, digits):
    """On two digits networks trained from different seeds, the trained curve's barrier (train
    loss) is at most a quarter of the straight line's."""
    a, b = minima
    train = digits[0]
    curve = connect.train_curve(a, b, train, kind="bezier", training=connect.CurveTraining(
        OptimizerConfig("adam", lr=0.01, nesterov=False, weight_decay=0.0), epochs=20))
    for k, v in a.state_dict().items():  # the ends did not move
        assert torch.equal(curve.theta(0)[k], v)
    result = connect.evaluate_path(curve, train, t=21)
    line, bent = result.barrier["line"], result.barrier["curve"]
    assert line > 0.1, "the straight line between two seeds' minima crosses a barrier"
    assert bent <= line / 4, (bent, line)
    # independent check of one point: the straight line's midpoint by a plain forward pass
    net = curve.network()
    net.load_state_dict({k: (a.state_dict()[k] + b.state_dict()[k]) / 2 for k in a.state_dict()})
    with torch.no_grad():
        mid = F.cross_entropy(net(train.x), train.y).item()
    assert result.loss["line"][10] == pytest.approx(mid, rel=1e-5)
    assert result.t[10] == pytest.approx(0.5)


def test_resume_is_exact(minima, digits, tmp_path):
    """Training through the project's loop: stopped after epoch 1 and resumed from its run folder,
    the bend is bit for bit that of an uninterrupted run."""
    a, b = minima
    options = {"kind": "polychain", "training": connect.CurveTraining(epochs=3, batch_size=256)}
    whole = connect.train_curve(a, b, digits[0], folder=tmp_path / "whole", **options)

    def stop(epoch, row):
        if epoch == 1:
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        connect.train_curve(a, b, digits[0], folder=tmp_path / "cut", on_epoch_end=stop, **options)
    with pytest.raises(LandscapeError, match="resume"):  # an unfinished run is not silently restarted
        connect.train_curve(a, b, digits[0], folder=tmp_path / "cut", **options)
    resumed = connect.train_curve(a, b, digits[0], folder=tmp_path / "cut", resume=True, **options)
    for k, v in whole.bend.items():
        assert torch.equal(resumed.bend[k], v), k
    assert [r["train_loss"] for r in resumed.meta["history"]] == [r["train_loss"] for r in whole.meta["history"]]
    assert not torch.equal(whole.bend["net.1.weight"], connect.Curve.between(a, b).bend["net.1.weight"])


def test_bend_only_is_trained(minima, digits):
    a, b = minima
    curve = connect.Curve.between(a, b)
    net = connect.CurveModel(curve)
    trainable = [n for n, p in net.named_parameters() if p.requires_grad]
    assert trainable and all(n.startswith("bend.") for n in trainable)
    torch.manual_seed(0)
    net.train()
    F.cross_entropy(net(digits[0].x[:64]), digits[0].y[:64]).backward()
    assert all(p.grad is not None for p in net.bend)
    assert all(p.grad is None for p in net.net.parameters())


# ------------------------------------------------------------------------------------ commands


def _cli(*args):
    from landscape.cli.connect import main

    return main([*map(str, args), "--no-progress"])


def test_cli_round_trip(ends, tmp_path, capsys):
    from landscape.cli.plot import main as plot_main
    from landscape.cli.surf import main as surf_main
    from landscape.io.surface_file import read_surface

    curve_file, path_file = tmp_path / "ab_curve.pt", tmp_path / "ab_path.h5"
    assert _cli(*ends, "--arch", "mlp", "--dataset", "digits", "--curve", "polychain", "--epochs", "3",
                "--out", curve_file) == 0
    raw = torch.load(curve_file, weights_only=True)
    from landscape.io.checkpoint import sha256

    assert raw["ends_sha256"] == [sha256(ends[0]), sha256(ends[1])] and raw["kind"] == "polychain"
    assert raw["training"]["epochs"] == 3 and [r["epoch"] for r in raw["history"]] == [0, 1, 2, 3]
    assert _cli("--eval", curve_file, *ends, "--points", "5", "--split", "train,test", "--out", path_file) == 0
    out = capsys.readouterr().out
    assert "train barrier (max - mean of the ends): curve" in out and "train barrier above the chord" in out
    s = read_surface(path_file)
    assert np.allclose(s.x, [0, 0.25, 0.5, 0.75, 1])
    for split in ("train", "test"):
        assert s.attrs[f"barrier_line_{split}_loss"] == pytest.approx(connect.barrier(s.values[f"line_{split}_loss"]))
        assert s.attrs[f"barrier_curve_{split}_loss"] == pytest.approx(connect.barrier(s.values[f"{split}_loss"]))
        assert s.attrs[f"chord_barrier_line_{split}_loss"] == pytest.approx(
            connect.chord_barrier(s.values[f"line_{split}_loss"], s.x))
        # the ends of both paths are the ends' networks
        assert s.values[f"{split}_loss"][0] == s.values[f"line_{split}_loss"][0]
    model_a = build_model("mlp", num_classes=10, in_channels=1)
    model_a.load_state_dict(torch.load(ends[0], weights_only=True)["state_dict"])
    from landscape.data.datasets import load_dataset

    test = load_dataset("digits", split="test")
    with torch.no_grad():
        assert s.values["test_loss"][0] == pytest.approx(F.cross_entropy(model_a(test.x), test.y).item(), rel=1e-6)
    assert _cli("--eval", curve_file, "--points", "5", "--out", path_file) == 0  # finished: resumed, nothing to do
    assert read_surface(path_file).values["train_loss"].tolist() == s.values["train_loss"].tolist()
    assert plot_main([str(path_file), "--formats", "png"]) == 0
    assert (tmp_path / "ab_path_path.png").is_file()

    plane = tmp_path / "ab_plane.h5"
    assert surf_main(["--curve", str(curve_file), "--x=-0.2:1.2:5", "--y=-0.2:1.2:4", "--out", str(plane),
                      "--no-progress"]) == 0
    assert read_surface(plane).attrs["curve_sha256"] == connect.load_curve(curve_file).checksum()
    assert plot_main([str(plane), "--path", str(curve_file), "--html", "--vtk", "--static", "--formats", "png"]) == 0
    for name in ("ab_plane_plane.png", "ab_plane_contour.png", "ab_plane.html", "ab_plane.vts"):  # like any surface
        assert (tmp_path / name).is_file(), name
    assert plot_main([str(path_file), "--path", str(curve_file), "--formats", "png"]) == 2  # not a plane


def test_plane_points_are_the_ends(ends, tmp_path):
    from landscape.cli.surf import main as surf_main
    from landscape.io.surface_file import read_surface

    curve_file = tmp_path / "c.pt"
    assert _cli(*ends, "--arch", "mlp", "--epochs", "2", "--out", curve_file) == 0
    plane = tmp_path / "plane.h5"
    assert surf_main(["--curve", str(curve_file), "--x=0:1:2", "--y=0:0.5:2", "--out", str(plane),
                      "--no-progress"]) == 0
    p = read_surface(plane)
    path = tmp_path / "path.h5"
    assert _cli("--eval", curve_file, "--points", "2", "--split", "train", "--out", path) == 0
    s = read_surface(path)
    assert p.values["train_loss"][0, 0] == pytest.approx(s.values["train_loss"][0], rel=1e-5)  # a
    assert p.values["train_loss"][0, 1] == pytest.approx(s.values["train_loss"][1], rel=1e-5)  # b


def test_cli_errors(ends, tmp_path, capsys):
    curve_file = tmp_path / "c.pt"
    assert _cli(*ends, "--arch", "mlp", "--epochs", "1", "--out", curve_file) == 0
    capsys.readouterr()
    before = curve_file.read_bytes()

    def one_line_exit_2(*args):
        code = _cli(*args)
        err = capsys.readouterr().err
        assert code == 2 and err.count("\n") == 1 and "Traceback" not in err, err
        return err

    # the curve file exists: not overwritten
    assert "exists" in one_line_exit_2(*ends, "--arch", "mlp", "--epochs", "1", "--out", curve_file)
    assert curve_file.read_bytes() == before
    # ends of another architecture
    cnn = tmp_path / "cnn.pt"
    torch.save(build_model("digits_cnn", num_classes=10, in_channels=1).state_dict(), cnn)
    assert "does not fit" in one_line_exit_2(ends[0], cnn, "--arch", "mlp", "--out", tmp_path / "x.pt")
    assert not (tmp_path / "x.pt").exists()
    # ends of other shapes, each fitting its own architecture: refused by the curve
    wide = tmp_path / "wide.pt"
    torch.save(build_model("mlp", num_classes=12, in_channels=1).state_dict(), wide)
    assert "fit" in one_line_exit_2(ends[0], wide, "--arch", "mlp", "--out", tmp_path / "x.pt")
    # a curve file whose ends' SHA-256 no longer match the checkpoints given
    path_file = tmp_path / "p.h5"
    path_file.write_bytes(b"keep me")
    assert "SHA-256" in one_line_exit_2("--eval", curve_file, ends[1], ends[0], "--out", path_file)
    assert path_file.read_bytes() == b"keep me"
    # one checkpoint, or t from too few points
    assert "two checkpoints" in one_line_exit_2(ends[0], "--arch", "mlp", "--out", tmp_path / "y.pt")
    assert "at least 2" in one_line_exit_2("--eval", curve_file, "--points", "1", "--out", tmp_path / "z.h5")
    for spec in (["--t", "-0.1:1:5"], ["--t=0:1.5:5"]):  # t outside [0, 1]
        assert "t must lie in [0, 1]" in one_line_exit_2("--eval", curve_file, *spec, "--out", tmp_path / "z.h5")
    assert "not a curve file" in one_line_exit_2("--eval", ends[0], "--out", tmp_path / "z.h5")
    assert not (tmp_path / "z.h5").exists()


def test_evaluate_bad_t(minima, digits):
    curve = connect.Curve.between(*minima)
    with pytest.raises(LandscapeError, match=r"\[0, 1\]"):
        connect.evaluate_path(curve, digits[0], t=[0.0, 0.5, 1.1])


@pytest.mark.slow
def test_batchnorm_curve(digits, tmp_path):
    """A BatchNorm network: the statistics are re-estimated at every t; at the ends they are those
    of the ends' networks re-estimated on the same batches (a plain loop here)."""
    from landscape.data.batches import as_batches
    from landscape.evaluation.batchnorm import BatchNormRecompute
    from landscape.evaluation.evaluator import evaluate as plain_evaluate
    from landscape.evaluation.losses import resolve_loss

    a, b = _states(0, 1)
    curve = connect.train_curve(a, b, digits[0], training=connect.CurveTraining(
        OptimizerConfig(lr=0.01, nesterov=False, weight_decay=0.0), epochs=1))
    result = connect.evaluate_path(curve, digits[0], t=3, evaluation=EvalOptions(batch_size=256, bn_recompute=2))
    net = curve.network()
    batches = as_batches(digits[0], "cpu", connect.DEFAULT_BATCH_SIZE)
    BatchNormRecompute(net, batches, 2)()
    _, loss = resolve_loss("crossentropy")
    assert result.loss["curve"][0] == pytest.approx(plain_evaluate(net, batches, loss)["loss"], rel=1e-6)


@pytest.mark.slow
@pytest.mark.mpi
def test_mpi_eval_equals_serial(ends, tmp_path):
    from helpers import run_command

    from landscape.io.surface_file import read_surface

    curve_file = tmp_path / "c.pt"
    assert _cli(*ends, "--arch", "mlp", "--epochs", "2", "--out", curve_file) == 0
    serial, parallel = tmp_path / "serial.h5", tmp_path / "parallel.h5"
    assert _cli("--eval", curve_file, "--points", "7", "--out", serial) == 0
    done = run_command(3, "connect", "--eval", curve_file, "--points", "7", "--out", parallel, "--no-progress")
    assert done.returncode == 0, done.stderr
    assert done.stdout.count("train barrier (max - mean of the ends)") == 1  # rank 0 alone reports
    a, b = read_surface(serial), read_surface(parallel)
    assert a.attrs["mpi_ranks"] == 1 and b.attrs["mpi_ranks"] == 3
    for name, values in a.values.items():
        assert np.array_equal(values, b.values[name]), name
    for key in ("barrier_curve_train_loss", "barrier_line_test_loss"):
        assert a.attrs[key] == b.attrs[key]


@pytest.mark.slow
def test_kill_9_and_resume(ends, tmp_path):
    """``landscape-connect`` killed with SIGKILL mid-training, rerun with --resume: the same curve
    file, tensor for tensor, as an uninterrupted run."""
    import signal
    import time

    args = [*ends, "--arch", "mlp", "--epochs", "40", "--batch-size", "8", "--no-progress", "--threads", "1"]
    assert _cli(*args, "--out", tmp_path / "whole.pt") == 0
    env = {**os.environ, "PYTHONPATH": ROOT, "OMP_NUM_THREADS": "1"}
    cmd = [sys.executable, "-m", "landscape.cli.connect", *map(str, args), "--out", str(tmp_path / "cut.pt")]
    proc = subprocess.Popen(cmd, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    from helpers import TIMEOUT

    deadline = time.monotonic() + TIMEOUT  # a hang guard: the file says when to kill
    while not (tmp_path / "cut.run" / "resume.pt").exists() and proc.poll() is None and time.monotonic() < deadline:
        time.sleep(0.05)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    assert not (tmp_path / "cut.pt").exists(), "the run finished before it could be killed"
    assert _cli(*args, "--out", tmp_path / "cut.pt") == 2  # an unfinished run is not restarted silently
    assert _cli(*args, "--out", tmp_path / "cut.pt", "--resume") == 0
    whole, cut = (torch.load(tmp_path / f"{n}.pt", weights_only=True) for n in ("whole", "cut"))
    assert whole["curve_sha256"] == cut["curve_sha256"]
    for k, v in whole["bend"].items():
        assert torch.equal(cut["bend"][k], v), k
