"""What a resume trusts: every input checked, one writer per output, temporaries of the dead only,
Ctrl-C, and BatchNorm statistics recomputed at every point."""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import torch
from helpers import save_digits_cnn, surf_config

import landscape as ls
from landscape.cli import surf as surf_cli
from landscape.directions.options import Directions
from landscape.engine.options import Output
from landscape.errors import LandscapeError
from landscape.evaluation.options import EvalOptions
from landscape.io.files import OutputLock, remove_stale_temporaries
from landscape.io.surface_file import ConfigMismatch
from landscape.jobs.surf import SurfConfig, surf
from landscape.space.grid import Grid

ROOT = str(Path(__file__).resolve().parents[2])


def cfg(tmp_path, model, **kw) -> SurfConfig:
    base = dict(model=model, arch="digits_cnn", dataset="digits", samples=60, grid=Grid("-1:1:3", "-1:1:3"),
                output=Output(tmp_path / "s.h5", progress=False), evaluation=EvalOptions(batch_size=30))
    base.update(kw)
    return surf_config(**base)


def make_cifar(folder: Path, seed: int) -> None:
    import pickle

    (folder / "cifar-10-batches-py").mkdir(parents=True)
    rng = np.random.default_rng(seed)
    for name in [f"data_batch_{i}" for i in range(1, 6)] + ["test_batch"]:
        obj = {b"data": rng.integers(0, 256, (6, 3072), dtype=np.uint8), b"labels": rng.integers(0, 10, 6).tolist()}
        with open(folder / "cifar-10-batches-py" / name, "wb") as f:
            pickle.dump(obj, f, protocol=2)


@pytest.mark.parametrize("change, reason", [
    ({"grid": Grid("-2:2:3", "-1:1:3")}, "grid"),   # same shape, another range
    ({"directions": Directions(seed=7)}, "directions differ"),
    ({"directions": Directions(norm="layer")}, "directions differ"),
    ({"sample_seed": 1}, "data differ"),              # same dataset, other samples
    ({"samples": 50}, "data differ"),
    ({"evaluation": EvalOptions(loss_fn="mse", batch_size=30)}, "loss"),
    ({"evaluation": EvalOptions(precision="bf16", batch_size=30)}, "precision"),  # (bf16's speed check skipped)
    ({"split": "test"}, "test_loss"),                # another split is another quantity... and data
    ({"directions": Directions(dir_type="states")}, "direction type"),
    ({"evaluation": EvalOptions(bn_recompute=1, batch_size=30)}, "BatchNorm"),
])
def test_every_input_that_changes_a_value_is_checked(tmp_path, digits_ckpt, change, reason, monkeypatch):
    monkeypatch.setattr("landscape.evaluation.evaluator.Evaluator._check_bf16", lambda self: None)
    first = surf(cfg(tmp_path, digits_ckpt)).surface
    before = Path(first.path).read_bytes()
    if change == {"split": "test"}:  # a new split adds quantities: allowed, computed, the rest kept
        again = surf(cfg(tmp_path, digits_ckpt, **change)).surface
        assert {"train_loss", "test_loss"} <= set(again.values)
        np.testing.assert_array_equal(again.values["train_loss"], first.values["train_loss"])
        return
    with pytest.raises(ConfigMismatch, match=reason):
        surf(cfg(tmp_path, digits_ckpt, **change))
    assert Path(first.path).read_bytes() == before


def test_another_model_is_refused(tmp_path, digits_ckpt):
    surf(cfg(tmp_path, digits_ckpt))
    other = save_digits_cnn(tmp_path / "other.pt", seed=5)
    with pytest.raises(ConfigMismatch, match="model differs"):
        surf(cfg(tmp_path, other))
    same_weights = tmp_path / "copy.pt"  # the same weights under another path: resumes
    shutil.copy(digits_ckpt, same_weights)
    surf(cfg(tmp_path, str(same_weights)))


def test_data_identity_is_a_checksum_not_a_path(tmp_path):
    a, b, c = tmp_path / "a", tmp_path / "b", tmp_path / "c"
    make_cifar(a, 0)
    shutil.copytree(a, b)  # the same data elsewhere
    make_cifar(c, 1)  # other data
    torch.manual_seed(0)
    ckpt = tmp_path / "lin.pt"
    torch.save(torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(3072, 10)).state_dict(), ckpt)
    base = dict(model=str(ckpt), arch="quadratic:flat_linear", dataset="cifar10", grid=Grid("-1:1:3"),
                output=Output(tmp_path / "s.h5", progress=False), evaluation=EvalOptions(batch_size=10))
    surf(surf_config(**base, data_root=str(a)))
    surf(surf_config(**base, data_root=str(b)))  # resumes: same checksum
    with pytest.raises(ConfigMismatch, match="data differ"):
        surf(surf_config(**base, data_root=str(c)))
    shutil.rmtree(a)
    make_cifar(a, 1)  # other data under the first path
    with pytest.raises(ConfigMismatch, match="data differ"):
        surf(surf_config(**base, data_root=str(a)))


def test_a_changed_metric_is_refused_and_an_added_one_computed(tmp_path):
    model = torch.nn.Linear(4, 3)
    x, y = torch.randn(12, 4), torch.randint(0, 3, (12,))
    out = str(tmp_path / "m.h5")

    def norm_a(m):
        return float(m.weight.norm())

    def norm_b(m):
        return float(m.weight.abs().sum())

    ls.surface(model, (x, y), (-1, 1, 3), metrics={"w": norm_a}, output=Output(out, progress=False))
    with pytest.raises(ConfigMismatch, match="w was computed with function"):
        ls.surface(model, (x, y), (-1, 1, 3), metrics={"w": norm_b}, output=Output(out, progress=False))


def test_one_writer_per_output(tmp_path):
    out = tmp_path / "s.h5"
    with OutputLock(out):
        with pytest.raises(LandscapeError, match=f"being written by another run .pid {os.getpid()}"):
            OutputLock(out).acquire()
    OutputLock(out).acquire().release()  # free again


def test_only_temporaries_of_dead_writers_are_removed(tmp_path):
    out = tmp_path / "s.h5"
    host = socket.gethostname().replace(".", "_")
    dead = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True,
                          text=True).stdout.strip()
    live = tmp_path / f".s.h5.tmp.{host}.{os.getpid()}"
    gone = tmp_path / f".s.h5.tmp.{host}.{dead}"
    elsewhere = tmp_path / f".s.h5.tmp.otherhost.{dead}"
    old_style = tmp_path / f".s.h5.tmp{dead}"
    for f in (live, gone, elsewhere, old_style):
        f.write_bytes(b"half")
    removed = remove_stale_temporaries(out)
    assert sorted(removed) == sorted([gone.name, old_style.name])
    assert live.exists() and elsewhere.exists()


def test_ctrl_c_is_one_line_and_exit_130(tmp_path, model_path):
    env = dict(os.environ, PYTHONPATH=ROOT, OMP_NUM_THREADS="1")
    script = shutil.which("landscape-surf")
    assert script is not None, "landscape-surf is not on PATH: install the package (pip install -e .)"
    for delay in (0.2, 4.0):  # while starting, and while computing
        proc = subprocess.Popen([script, "--model", model_path, "--arch", "digits_cnn", "--x=-1:1:41",
                                 "--y=-1:1:41", "--out", str(tmp_path / f"c{delay}.h5"), "--no-progress"],
                                stderr=subprocess.PIPE, stdout=subprocess.PIPE, text=True, env=env)
        time.sleep(delay)
        proc.send_signal(signal.SIGINT)
        _, err = proc.communicate(timeout=60)
        assert proc.returncode == 130, err
        assert err.strip().splitlines()[-1] == "landscape-surf: interrupted" and "Traceback" not in err


def test_batchnorm_statistics_recomputed_at_every_point(tmp_path):
    """Interpolating between two BatchNorm networks: with recomputed statistics, each point is
    evaluated with the statistics of its own weights (a plain loop re-estimates them)."""
    a = save_digits_cnn(tmp_path / "a.pt", seed=0)
    b = save_digits_cnn(tmp_path / "b.pt", seed=1)
    c = cfg(tmp_path, a, model2=b, grid=Grid("0:1:3"), samples=None, split="test",
            evaluation=EvalOptions(bn_recompute=3, batch_size=100), output=Output(tmp_path / "bn.h5", progress=False))
    s = surf(c).surface
    assert s.attrs["bn_recompute"] == 3
    train = ls.load_dataset("digits", split="train")
    test = ls.load_dataset("digits", split="test")
    sa, sb = torch.load(a), torch.load(b)
    for i, t in enumerate(s.x):
        net = ls.build_model("digits_cnn", num_classes=10, in_channels=1)
        net.load_state_dict({k: sa[k] + t * (sb[k] - sa[k]) if sa[k].is_floating_point() else sa[k] for k in sa})
        for m in net.modules():
            if isinstance(m, torch.nn.BatchNorm2d):
                m.reset_running_stats()
                m.momentum = None
        net.train()
        with torch.no_grad():
            for k in range(3):
                net(train.x[k * 100:(k + 1) * 100])
        net.eval()
        with torch.no_grad():
            expected = float(torch.nn.functional.cross_entropy(net(test.x), test.y))
        assert s.loss[i] == pytest.approx(expected, rel=1e-5)


def test_surf_cli_words_the_remedy_in_flags(tmp_path, digits_ckpt, capsys):
    base = ["--model", digits_ckpt, "--arch", "digits_cnn", "--samples", "40", "--x=-1:1:3", "--no-progress",
            "--out", str(tmp_path / "s.h5")]
    assert surf_cli.main(base) == 0
    assert surf_cli.main(base + ["--seed", "2"]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "--overwrite" in err and "--out" in err
