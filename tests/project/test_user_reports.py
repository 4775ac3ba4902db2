"""What a new user and a fault campaign hit (issue 24): the thread policy of every command, damaged
and foreign files, one writer per output, full disks, one data contract, metrics with gradients."""

from __future__ import annotations

import errno
import importlib
import os
import shutil
import signal
import subprocess
import sys

import numpy as np
import pytest
import torch

import landscape
from landscape.runtime import threads as thread_policy


def _busy_machine(monkeypatch, idle: int = 1) -> None:
    """The caller runs with 2 torch threads, but the thread policy finds ``idle`` cores idle."""
    monkeypatch.delenv("OMP_NUM_THREADS", raising=False)
    monkeypatch.setattr(thread_policy, "default_threads", lambda ranks_on_node=1: idle)
    torch.set_num_threads(2)


# -- 1. training follows the thread policy ---------------------------------------------------


def test_training_follows_the_thread_policy_and_takes_threads(tmp_path, monkeypatch):
    from landscape.cli.train import build_parser
    from landscape.jobs.train import TrainConfig, train

    _busy_machine(monkeypatch)
    seen = []
    options = dict(arch="mlp", dataset="digits", epochs=1, subset=200, batch_size=64, progress=False)
    cfg = TrainConfig.from_args(**options, out=str(tmp_path / "a"))
    train(cfg, on_epoch_end=lambda epoch, row: seen.append(torch.get_num_threads()))
    assert seen == [1] and torch.get_num_threads() == 2  # the policy inside, the caller's setting after
    seen.clear()
    train(TrainConfig.from_args(**options, out=str(tmp_path / "b"), threads=3),
          on_epoch_end=lambda epoch, row: seen.append(torch.get_num_threads()))
    assert seen == [3]
    assert build_parser().parse_args(["--arch", "mlp", "--threads", "2"]).threads == 2


def test_demo_training_follows_the_thread_policy(monkeypatch, tmp_path):
    from landscape.jobs import demo

    monkeypatch.setenv("LANDSCAPE_CACHE", str(tmp_path))  # an empty cache: the demo network is trained here
    _busy_machine(monkeypatch)
    monkeypatch.setattr(demo, "DEMO_EPOCHS", 1)
    seen = []
    build = demo.build_model
    monkeypatch.setattr(demo, "build_model", lambda *a, **k: seen.append(torch.get_num_threads()) or build(*a, **k))
    demo.demo_checkpoint(verbose=False)
    assert seen == [1] and torch.get_num_threads() == 2


def test_every_computing_command_takes_threads():
    from landscape.cli import hessian, markov, prune, surf, train, traj

    for cli in (hessian, markov, prune, surf, train, traj):
        assert any("--threads" in a.option_strings for a in cli.build_parser()._actions), cli.PROG


# -- 12. one writer per output -----------------------------------------------------------------


@pytest.mark.parametrize("command", ["hessian", "traj", "prune", "markov", "train"])
def test_a_second_writer_is_refused_by_every_command(tmp_path, digits_ckpt, capsys, command):
    from landscape.io.files import OutputLock

    out = tmp_path / {"hessian": "h.h5", "traj": "t.h5", "prune": "p.pt", "markov": "m.png", "train": "run"}[command]
    argv = {
        "hessian": ["--model", digits_ckpt, "--arch", "digits_cnn", "--samples", "40", "--top-k", "1"],
        "traj": ["--checkpoints", digits_ckpt, "--final", digits_ckpt, "--arch", "digits_cnn", "--in-channels", "1"],
        "prune": ["--model", digits_ckpt, "--arch", "digits_cnn", "--plan", "features.0=0.5"],
        "markov": ["--steps", "20", "--chains", "20", "--rates", "1"],
        "train": ["--arch", "mlp", "--dataset", "digits", "--epochs", "1", "--subset", "100", "--no-progress"],
    }[command] + ["--out", str(out)]
    main = importlib.import_module(f"landscape.cli.{command}").main
    with OutputLock(out):  # another run holds the output: deterministic, no race to lose
        assert main(argv) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "being written by another run (pid" in err[0], err
    assert not out.exists() or not any(out.iterdir())  # nothing written (a run folder may be made)


def test_markov_replaces_its_figure_only_with_overwrite(tmp_path, capsys):
    from landscape.cli.markov import main

    out = tmp_path / "m.png"
    out.write_bytes(b"mine")
    assert main(["--steps", "20", "--chains", "20", "--rates", "1", "--out", str(out)]) == 2
    assert out.read_bytes() == b"mine" and "exists" in capsys.readouterr().err
    assert main(["--steps", "20", "--chains", "20", "--rates", "1", "--out", str(out), "--overwrite"]) == 0
    assert out.read_bytes()[:4] == b"\x89PNG"


# -- 13. a full disk -----------------------------------------------------------------------------

SURF = ["--arch", "digits_cnn", "--dataset", "digits", "--samples", "60", "--batch-size", "64", "--no-progress",
        "--threads", "1"]


def _full_disk(monkeypatch, when=lambda name: True) -> list[str]:
    """Every write whose file's name passes ``when`` writes a little, then finds the disk full."""
    from landscape.io import files

    real, failed = files._write_all if hasattr(files, "_write_all") else None, []

    def write_all(fd, data):
        name = os.path.basename(os.readlink(f"/proc/self/fd/{fd}"))
        if when(name):
            os.write(fd, bytes(memoryview(data)[:10]))
            failed.append(name)
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
        real(fd, data)

    monkeypatch.setattr(files, "_write_all", write_all, raising=False)
    return failed


def _assert_one_line(err: str, prog: str, *fragments: str) -> None:
    lines = err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith(f"{prog}: error:") and "Traceback" not in err, err
    for f in fragments:
        assert f in lines[0], lines[0]


@pytest.mark.parametrize("full", ["surface", "everything"])
def test_a_full_disk_ends_surf_in_one_line_without_temporaries(tmp_path, digits_ckpt, monkeypatch, capsys, full):
    from landscape.cli.surf import main

    out = tmp_path / "s.h5"
    # "surface": the directions fit, the surface's rewrite does not; "everything": 0 bytes free
    failed = _full_disk(monkeypatch, (lambda n: ".s.h5.tmp" in n) if full == "surface" else (lambda n: True))
    assert main(["--model", digits_ckpt, *SURF, "--x=-1:1:3", "--out", str(out)]) == 2
    _assert_one_line(capsys.readouterr().err, "landscape-surf", "No space left on device")
    assert failed and not out.exists()
    assert not [p.name for p in tmp_path.iterdir() if ".tmp" in p.name]


def test_a_full_disk_ends_training_in_one_line_without_temporaries(tmp_path, monkeypatch, capsys):
    from landscape.cli.train import main

    out = tmp_path / "run"
    failed = _full_disk(monkeypatch, lambda n: n.startswith(".model_1.pt.tmp"))
    argv = ["--arch", "mlp", "--dataset", "digits", "--epochs", "2", "--save-every", "1", "--subset", "100",
            "--no-progress", "--threads", "1", "--out", str(out)]
    assert main(argv) == 2
    _assert_one_line(capsys.readouterr().err, "landscape-train", "model_1.pt", "No space left on device")
    assert failed and not [p.name for p in out.iterdir() if ".tmp" in p.name]
    assert (out / "model_0.pt").exists()  # what was written before stays
    monkeypatch.undo()
    assert main([*argv, "--resume"]) == 0  # and the run goes on once there is space again


# -- 2. a file that crashes the HDF5 library -------------------------------------------------------

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(landscape.__file__)))


def _run(code: str, cwd) -> subprocess.CompletedProcess:
    env = {**os.environ, "PYTHONPATH": ROOT, "OMP_NUM_THREADS": "1"}
    return subprocess.run([sys.executable, "-c", code], cwd=cwd, env=env, capture_output=True, text=True, timeout=300)


@pytest.fixture(scope="module")
def crashing_surface(tmp_path_factory):
    """A surface file with one flipped byte in the datatype of its ``arch`` attribute: reading its
    attributes kills plain h5py with a segmentation fault (found by flipping every byte of a file)."""
    from landscape.io.surface_file import new_surface, write_surface

    folder = tmp_path_factory.mktemp("crash")
    s = new_surface([np.linspace(-1, 1, 3)], ["train_loss", "train_acc"], {"arch": "digits_cnn", "model": "m.pt"})
    s.values["train_loss"][:] = [1.0, 0.5, 1.0]
    s.values["train_acc"][:] = [50.0, 90.0, 50.0]
    for n in s.done:
        s.done[n][:] = True
    write_surface(folder / "good.h5", s)
    data = bytearray((folder / "good.h5").read_bytes())
    data[data.find(b"arch\x00") + 9] ^= 0xFF  # attribute message: name padded to 8, then the datatype
    (folder / "bad.h5").write_bytes(bytes(data))
    plain = _run(f"import h5py\nf = h5py.File({str(folder / 'bad.h5')!r}, 'r')\n[f.attrs[k] for k in f.attrs]", folder)
    if plain.returncode >= 0:
        pytest.skip(f"this HDF5 library does not crash on the flipped byte (exit {plain.returncode})")
    return folder / "bad.h5"


def test_a_file_that_crashes_the_hdf5_library_is_damaged_not_a_crash(crashing_surface, tmp_path):
    bad = tmp_path / "s.h5"
    shutil.copy(crashing_surface, bad)
    r = _run(f"import sys\nfrom landscape.cli.plot import main\nsys.exit(main([{str(bad)!r}, '--formats', 'png']))",
             tmp_path)
    assert r.returncode == 2, (r.returncode, r.stderr[-500:])
    _assert_one_line(r.stderr, "landscape-plot", "is damaged", "crashed")
    assert not list(tmp_path.glob("*.png"))


@pytest.mark.parametrize("flag", ["--overwrite", pytest.param("--repair", marks=pytest.mark.slow)])
def test_overwrite_and_repair_replace_a_file_that_crashes_the_hdf5_library(crashing_surface, tmp_path, digits_ckpt,
                                                                           flag):
    bad = tmp_path / "s.h5"
    shutil.copy(crashing_surface, bad)
    surf = [a for a in SURF if a not in ("--batch-size", "64")]  # with no batch size the old file's is looked up
    argv = ["--model", digits_ckpt, *surf, "--x=-1:1:3", "--out", str(bad), flag]
    r = _run(f"import sys\nfrom landscape.cli.surf import main\nsys.exit(main({argv!r}))", tmp_path)
    assert r.returncode == 0, (r.returncode, r.stderr[-500:])
    from landscape.io.surface_file import read_surface

    repaired = read_surface(bad)
    assert repaired.done["train_loss"].all() and repaired.attrs["arch"] == "digits_cnn"


def test_the_reader_child_turns_any_crash_into_damaged(tmp_path, monkeypatch):
    """The mechanism, in-process: a reader child that dies of a signal means "damaged"."""
    from landscape.errors import LandscapeError
    from landscape.io import h5
    from landscape.io.surface_file import new_surface, peek_attrs, read_surface, write_surface

    s = new_surface([np.linspace(-1, 1, 3)], ["train_loss"], {"arch": "mlp"})
    write_surface(tmp_path / "s.h5", s)
    monkeypatch.setattr(h5, "_examine", lambda path: os.kill(os.getpid(), signal.SIGSEGV), raising=False)
    monkeypatch.setattr(h5, "_READER", h5._Reader() if hasattr(h5, "_Reader") else None, raising=False)
    with pytest.raises(LandscapeError, match="damaged .*crashed"):
        read_surface(tmp_path / "s.h5")
    assert peek_attrs(tmp_path / "s.h5") == {}
    monkeypatch.undo()
    assert read_surface(tmp_path / "s.h5").attrs["arch"] == "mlp"  # a new child reads it again


# -- 3. files of another kind are named, never "damaged"; drawings that would mislead are refused --


@pytest.fixture(scope="module")
def kinds(tmp_path_factory):
    """One file of every kind: surfaces (random directions, the trajectory's, 1D), a trajectory,
    a Hessian summary and a pruning sensitivity scan."""
    from helpers import save_digits_cnn

    from landscape.cli import hessian, prune, surf, traj

    d = tmp_path_factory.mktemp("kinds")
    ckpts = [save_digits_cnn(d / f"model_{i}.pt", seed=i) for i in range(3)]
    data = ["--dataset", "digits", "--samples", "60"]
    common = ["--model", ckpts[-1], "--arch", "digits_cnn", *data]
    run = ["--batch-size", "64", "--no-progress", "--threads", "1"]
    assert traj.main(["--checkpoints", *ckpts, "--final", ckpts[-1], "--arch", "digits_cnn", "--in-channels", "1",
                      "--out", str(d / "pca.h5")]) == 0
    assert surf.main([*common, *run, "--x=-1:1:3", "--y=-1:1:3", "--out", str(d / "random.h5")]) == 0
    assert surf.main([*common, *run, "--directions", str(d / "pca.h5"), "--x=-1:1:3", "--y=-1:1:3",
                      "--out", str(d / "onpath.h5")]) == 0
    assert surf.main([*common, *run, "--x=-1:1:5", "--out", str(d / "line.h5")]) == 0
    assert hessian.main([*common, "--top-k", "1", "--threads", "1", "--out", str(d / "hess.h5")]) == 0
    assert prune.main([*common, "--sensitivity", "--ratios", "0.5", "--layers", "features.0", "--no-progress",
                       "--threads", "1", "--out", str(d / "sens.h5")]) == 0
    return d


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
    _assert_one_line(capsys.readouterr().err, "landscape-plot", message.format(d=kinds))
    assert sorted(p.name for p in kinds.glob("*.png")) == ["sens.png", "sens_norms.png"]  # prune's own, no more


def test_a_path_is_drawn_over_a_surface_of_its_own_directions(kinds, capsys, tmp_path):
    from landscape.cli.plot import main

    assert main([str(kinds / "onpath.h5"), "--trajectory", str(kinds / "pca.h5"), "--formats", "png",
                 "--out", str(tmp_path / "p")]) == 0
    assert (tmp_path / "p_trajectory.png").exists()


def test_other_readers_name_the_kind_too(kinds):
    from landscape.errors import LandscapeError
    from landscape.hessian.summary import read_summary
    from landscape.io.trajectory_file import read_trajectory

    with pytest.raises(LandscapeError, match="is a surface file .*, not a Hessian summary file"):
        read_summary(kinds / "random.h5")
    with pytest.raises(LandscapeError, match="is a Hessian summary file .*, not a trajectory file"):
        read_trajectory(kinds / "hess.h5")


# -- 4. figures of another quantity say it in their names ------------------------------------------


def _eig_surface(path, names=("train_loss", "train_acc", "max_eig", "min_eig")):
    from helpers import make_surface

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


# -- 5. the original tool's convexity files --------------------------------------------------------


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


# -- 6. one data contract ----------------------------------------------------------------------------


def test_sensitivity_takes_what_surface_takes():
    import torch.nn.functional as F
    from torch.utils.data import DataLoader, TensorDataset

    from landscape.data.datasets import load_dataset
    from landscape.evaluation.options import EvalOptions
    from landscape.models import build_model
    from landscape.prune import prune_filters, sensitivity

    torch.manual_seed(0)
    model = build_model("digits_cnn", num_classes=10, in_channels=1).eval()
    data = load_dataset("synthetic", split="test", shape=(1, 8, 8), size=64)
    X, y = data.x, data.y
    with torch.no_grad():  # the reference: a plain forward pass of the pruned network
        out = prune_filters(model, {"features.3": 0.5}).eval()(X)
    loss, acc = F.cross_entropy(out, y).item(), 100.0 * (out.argmax(1) == y).double().mean().item()
    for given in [(X, y), data, TensorDataset(X, y), DataLoader(TensorDataset(X, y), batch_size=16)]:
        res = sensitivity(model, given, [0.5], layers=["features.3"], evaluation=EvalOptions(batch_size=16))
        assert res.loss[0, 0] == pytest.approx(loss, rel=1e-5), type(given).__name__
        assert res.accuracy[0, 0] == pytest.approx(acc, abs=1e-9)
        assert res.stages == (0,)


# -- 7. metrics and Hessians on users' models ----------------------------------------------------------


def _mlp_and_data(hidden: int = 8):
    from landscape.data.datasets import load_dataset

    torch.manual_seed(0)
    d = load_dataset("digits", split="train")
    X, y = d.x[:200].flatten(1), d.y[:200]
    return torch.nn.Sequential(torch.nn.Linear(64, hidden), torch.nn.Tanh(), torch.nn.Linear(hidden, 10)), X, y


def test_a_gradient_metric_gets_gradients_when_it_asks():
    import torch.nn.functional as F

    import landscape as ls
    from landscape.errors import LandscapeError
    from landscape.evaluation.metrics import needs_grad

    model, X, y = _mlp_and_data()

    def grad_norm(m):
        g = torch.autograd.grad(F.cross_entropy(m(X), y), list(m.parameters()))
        return torch.cat([t.flatten() for t in g]).norm().item()

    with pytest.raises(LandscapeError, match="metric 'grad_norm' takes gradients.*needs_grad = True"):
        ls.surface(model, (X, y), ls.Grid("-1:1:3"), metrics={"grad_norm": grad_norm},
                   output=ls.Output(progress=False))
    expected = grad_norm(model)  # at the origin, the middle point
    s = ls.surface(model, (X, y), ls.Grid("-1:1:3"), metrics={"grad_norm": needs_grad(grad_norm)},
                   output=ls.Output(progress=False))
    assert s.values["grad_norm"][1] == pytest.approx(expected, rel=1e-5)
    assert np.isfinite(s.values["grad_norm"]).all() and len(set(s.values["grad_norm"].round(6))) == 3


def test_a_metric_whose_code_changed_is_refused_on_resume(tmp_path, monkeypatch):
    import landscape as ls
    from landscape.errors import LandscapeError

    model, X, y = _mlp_and_data()
    monkeypatch.syspath_prepend(str(tmp_path))
    module = tmp_path / "usermetric_24.py"
    module.write_text("def metric(model):\n    return 1.0\n")
    import usermetric_24

    out = str(tmp_path / "s.h5")
    run = dict(metrics={"m": usermetric_24.metric}, output=ls.Output(path=out, progress=False))
    ls.surface(model, (X, y), ls.Grid("-1:1:3"), **run)
    ls.surface(model, (X, y), ls.Grid("-1:1:3"), **run)  # the same code resumes (nothing to do)
    module.write_text("def metric(model):\n    return 2.0  # changed\n")
    importlib.reload(usermetric_24)
    with pytest.raises(LandscapeError, match="m was computed with source_sha256"):
        ls.surface(model, (X, y), ls.Grid("-1:1:3"), metrics={"m": usermetric_24.metric},
                   output=ls.Output(path=out, progress=False))


def test_hessian_products_through_a_transformer_layer_on_cpu():
    from torch.func import functional_call
    from torch.nn.attention import SDPBackend, sdpa_kernel

    from landscape.hessian import HessianOperator

    torch.manual_seed(0)

    class Tiny(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.emb = torch.nn.Linear(4, 8)
            self.enc = torch.nn.TransformerEncoderLayer(8, 2, 16, dropout=0.0, batch_first=True)
            self.head = torch.nn.Linear(8, 3)

        def forward(self, x):
            return self.head(self.enc(self.emb(x)).mean(1))

    model, X, y = Tiny().eval(), torch.randn(12, 5, 4), torch.randint(0, 3, (12,))
    op = HessianOperator(model, (X, y))
    v = np.random.default_rng(0).standard_normal(op.size)
    names = [k for k, _ in model.named_parameters()]
    shapes = [p.shape for _, p in model.named_parameters()]

    def loss(flat):  # the reference: torch's own Hessian-vector product, math attention
        parts = dict(zip(names, (c.reshape(s) for c, s in zip(flat.split([s.numel() for s in shapes]), shapes,
                                                                strict=True)), strict=True))
        return torch.nn.functional.cross_entropy(functional_call(model, parts, (X,)), y)

    flat = torch.cat([p.detach().flatten() for p in model.parameters()])
    with sdpa_kernel(SDPBackend.MATH):
        _, ref = torch.autograd.functional.hvp(loss, flat, torch.as_tensor(v, dtype=torch.float32))
    np.testing.assert_allclose(op.matvec(v), ref.numpy(), rtol=1e-4, atol=1e-5)


def test_a_model_without_parameters_is_one_clear_error():
    import landscape as ls
    from landscape.errors import LandscapeError
    from landscape.hessian import HessianOperator

    class NoParams(torch.nn.Module):
        def forward(self, x):
            return x[:, :3]

    data = (torch.randn(8, 4), torch.randint(0, 3, (8,)))
    with pytest.raises(LandscapeError, match=r"^the model \(NoParams\) has no parameters: a landscape moves them$"):
        ls.surface(NoParams(), data, ls.Grid("-1:1:3"), output=ls.Output(progress=False))
    with pytest.raises(LandscapeError, match=r"^the model \(NoParams\) has no parameters: a Hessian needs some$"):
        HessianOperator(NoParams(), data)


def test_the_trace_default_converges_on_a_small_model_and_says_when_it_did_not():
    import torch.nn.functional as F

    from landscape.hessian import HessianOperator, trace
    from landscape.hessian.operator import matmat

    model, X, y = _mlp_and_data(hidden=4)
    opt = torch.optim.Adam(model.parameters(), lr=1e-2)
    for _ in range(100):  # a newcomer's trained model
        opt.zero_grad()
        F.cross_entropy(model(X), y).backward()
        opt.step()
    op = HessianOperator(model.eval(), (X, y))
    exact = float(np.trace(matmat(op, np.eye(op.size))))
    tr = trace(op)
    assert tr.converged and tr.samples < 1000, repr(tr)
    assert abs(tr.estimate - exact) <= 4 * tr.stderr
    assert "converged" in str(tr) and "NOT" not in str(tr)
    short = trace(op, tol=1e-6, max_samples=8, min_samples=4)
    assert not short.converged
    assert "NOT converged" in str(short) and "NOT converged" in repr(short)


def test_the_reader_child_never_holds_the_callers_locks(tmp_path, monkeypatch):
    from landscape.io import h5
    from landscape.io.files import OutputLock
    from landscape.io.surface_file import new_surface, read_surface, write_surface

    write_surface(tmp_path / "s.h5", new_surface([np.linspace(-1, 1, 3)], ["train_loss"], {}))
    monkeypatch.setattr(h5, "_READER", h5._Reader())  # forked below, while the lock is held
    lock = OutputLock(tmp_path / "s.h5").acquire()
    read_surface(tmp_path / "s.h5")
    lock.release()
    OutputLock(tmp_path / "s.h5").acquire().release()  # free again: the reader did not keep it
