"""Resolve once, read once: a command reads each checkpoint once (a curve file included), a
curve's plane is computed once, landscape-surf resolves its configuration once, and a resolved
configuration cannot be resolved again."""

from __future__ import annotations

import os
from collections import Counter

import pytest
import torch
from helpers import save_digits_cnn

from landscape import connect
from landscape.cli import hessian as hessian_cli
from landscape.cli import prune as prune_cli
from landscape.cli import surf as surf_cli
from landscape.errors import LandscapeError
from landscape.io import checkpoint as checkpoint_io
from landscape.io.surface_file import read_surface
from landscape.models import build_model


@pytest.fixture
def reads(monkeypatch) -> Counter:
    """How often each checkpoint file is loaded (the one loader under every reader of checkpoints)."""
    counts: Counter = Counter()
    load = checkpoint_io._read

    def counting(path, unsafe_pickle):
        counts[os.path.abspath(path)] += 1
        return load(path, unsafe_pickle)

    monkeypatch.setattr(checkpoint_io, "_read", counting)
    return counts


@pytest.fixture
def curve_file(tmp_path) -> str:
    """A polychain curve between two digits MLPs, its bend off the straight line."""
    torch.manual_seed(0)
    a = build_model("mlp", num_classes=10, in_channels=1)
    torch.manual_seed(1)
    b = build_model("mlp", num_classes=10, in_channels=1)
    curve = connect.Curve.between(a, b, "polychain", meta={"arch": "mlp", "num_classes": 10, "in_channels": 1})
    g = torch.Generator().manual_seed(2)
    curve.bend = {k: v + 0.05 * torch.randn(v.shape, generator=g) for k, v in curve.bend.items()}
    return curve.save(tmp_path / "ab_curve.pt")


def test_surf_of_a_curve_reads_the_file_once_and_computes_its_plane_once(curve_file, tmp_path, reads, monkeypatch):
    calls: Counter = Counter()
    for name in ("load_curve", "plane_directions"):  # what the commands call, through the connect face
        real = getattr(connect, name)
        monkeypatch.setattr(connect, name, lambda *a, _real=real, _name=name, **k: (calls.update([_name]),
                                                                                     _real(*a, **k))[1])
    out = tmp_path / "plane.h5"
    assert surf_cli.main(["--curve", curve_file, "--x=0:1:3", "--y=0:0.5:2", "--samples", "32", "--out", str(out),
                          "--no-progress", "--threads", "1"]) == 0
    assert reads == {os.path.abspath(curve_file): 1}
    assert calls == {"load_curve": 1, "plane_directions": 1}
    s = read_surface(out)
    assert s.attrs["curve_sha256"] == connect.load_curve(curve_file).checksum()
    assert s.attrs["model_sha256"] == checkpoint_io.sha256(curve_file)  # the curve file is the model (its end a)


def test_every_checkpoint_is_read_once(tmp_path, reads):
    a, b = save_digits_cnn(tmp_path / "a.pt", seed=0), save_digits_cnn(tmp_path / "b.pt", seed=1)
    common = ["--arch", "digits_cnn", "--samples", "32", "--threads", "1"]
    assert surf_cli.main(["--model", a, "--model2", b, "--x=0:1:3", *common, "--out", str(tmp_path / "i.h5"),
                          "--no-progress"]) == 0
    assert reads == {os.path.abspath(a): 1, os.path.abspath(b): 1}
    reads.clear()
    assert prune_cli.main(["--model", a, "--sensitivity", "--ratios", "0.5", "--layers", "features.0", *common,
                           "--out", str(tmp_path / "sens.h5"), "--no-progress"]) == 0
    assert reads == {os.path.abspath(a): 1}
    reads.clear()
    assert hessian_cli.main(["--model", a, *common, "--top-k", "1", "--out", str(tmp_path / "h.h5")]) == 0
    assert reads == {os.path.abspath(a): 1}


def test_surf_resolves_once_and_a_resolved_run_cannot_be_resolved_again(tmp_path, monkeypatch):
    from landscape.jobs import surf as job

    model = save_digits_cnn(tmp_path / "m.pt")
    calls = []
    real = job.resolve
    monkeypatch.setattr(job, "resolve", lambda *a, **k: calls.append(1) or real(*a, **k))
    assert surf_cli.main(["--model", model, "--arch", "digits_cnn", "--x=-1:1:3", "--samples", "32",
                          "--out", str(tmp_path / "s.h5"), "--no-progress", "--threads", "1"]) == 0
    assert len(calls) == 1
    cfg = surf_cli.config_from_args(surf_cli.build_parser().parse_args(["--model", model, "--arch", "digits_cnn"]),
                                    [])
    run = real(cfg)
    assert isinstance(run, job.ResolvedSurf) and run.config.grid is not None and run.config.evaluation.threads
    with pytest.raises(LandscapeError, match="resolved already"):
        real(run)
    with pytest.raises(LandscapeError, match="ResolvedSurf"):
        job.compute(cfg)
