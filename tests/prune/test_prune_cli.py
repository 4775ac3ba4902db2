"""``landscape-prune``: counts, pruned checkpoints, sensitivity files and figures, bad input."""

from __future__ import annotations

import h5py
import pytest
import torch
from helpers import RESNET_PLAN, cifar_resnet_counts, randomized

from landscape.cli.prune import main
from landscape.models import build_model
from landscape.prune import prune_filters, resize_, widths_of


@pytest.fixture(scope="module")
def r20(tmp_path_factory) -> str:
    path = tmp_path_factory.mktemp("ckpt") / "r20.pt"
    torch.save({"state_dict": randomized(build_model("resnet20")).state_dict(), "num_classes": 10,
                "in_channels": 3}, path)
    return str(path)


@pytest.fixture(scope="module")
def digits(tmp_path_factory) -> str:
    path = tmp_path_factory.mktemp("ckpt") / "digits.pt"
    torch.save(randomized(build_model("digits_cnn", in_channels=1), seed=3).state_dict(), path)
    return str(path)


def run(capsys, *argv: str) -> tuple[int, str, str]:
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


def test_count_is_exact(capsys):
    """(Its speed is measured by benchmarks/bench_prune.py, not asserted here.)"""
    code, out, _ = run(capsys, "--arch", "resnet110", "--count", "--plan", "resnet110-B")
    assert code == 0
    assert "252,887,680 FLOPs" in out and "1,719,856 params" in out
    assert "155,124,352 FLOPs" in out and "38.66% fewer FLOPs" in out
    code, out, _ = run(capsys, "--arch", "resnet34_imagenet", "--count", "--plan", "resnet34-C")
    assert code == 0
    assert "on 3x224x224" in out and "3,644,493,824 FLOPs" in out and "3,374,446,592 FLOPs" in out


def test_count_of_a_checkpoint_per_layer(capsys, r20):
    code, out, _ = run(capsys, "--model", r20, "--arch", "resnet20", "--count", "--per-layer")
    flops, params = cifar_resnet_counts(20, {})  # on 32x32, shortcuts not counted
    assert code == 0 and f"{flops:,} FLOPs" in out and f"{params:,} params" in out
    assert out.count(" Conv2d ") == 19 and " Linear " in out


def test_plan_writes_a_checkpoint_that_rebuilds(capsys, r20, tmp_path):
    out_path = tmp_path / "p.pt"
    plan = ",".join(f"{k}={v}" for k, v in RESNET_PLAN.items())
    code, out, err = run(capsys, "--model", r20, "--arch", "resnet20", "--plan", plan, "--strategy", "greedy",
                         "--out", str(out_path))
    assert code == 0 and err == "" and "wrote" in out
    ckpt = torch.load(out_path, weights_only=True)
    assert ckpt["arch"] == "resnet20" and ckpt["prune"]["strategy"] == "greedy" and ckpt["prune"]["plan"] == RESNET_PLAN
    assert ckpt["prune"]["source_sha256"] and ckpt["prune"]["source"] == r20
    model = build_model("resnet20")
    model.load_state_dict(torch.load(r20, weights_only=True)["state_dict"])
    expected = prune_filters(model.eval(), RESNET_PLAN, "greedy").eval()
    rebuilt = resize_(build_model("resnet20"), widths_of(ckpt))
    rebuilt.load_state_dict(ckpt["state_dict"])
    x = torch.randn(2, 3, 32, 32)
    with torch.no_grad():
        assert torch.equal(rebuilt.eval()(x), expected(x))
    # the pruned checkpoint counts as its smaller self
    code, out, _ = run(capsys, "--model", str(out_path), "--arch", "resnet20", "--count")
    assert code == 0 and f"{ckpt['prune']['flops']:,} FLOPs" in out


BAD = [
    (["--plan", "layer1.0.conv9=0.5"], "unknown layer 'layer1.0.conv9'"),
    (["--plan", "layer1.0.conv1=1.5"], "[0, 1)"),
    (["--plan", "layer1.0.conv1=-0.1"], "[0, 1)"),
    (["--plan", "resnet56-B"], "preset 'resnet56-B' is for resnet56"),
    (["--plan", "vgg16-A"], "preset 'vgg16-A' is for vgg16"),
    (["--plan", "layer1.0.conv1=0.97"], "removes every filter"),
    (["--plan", "layer1.0.conv2=0.5"], "cannot prune 'layer1.0.conv2' alone"),
    (["--plan", "nonsense"], "neither a preset"),
    (["--plan", "layer1.0.conv1=0.5", "--strategy", "random"], "invalid choice"),
]


@pytest.mark.parametrize("extra,message", BAD)
def test_bad_plans_exit_2_with_one_line_and_write_nothing(capsys, r20, tmp_path, extra, message):
    out_path = tmp_path / "p.pt"
    code, out, err = run(capsys, "--model", r20, "--arch", "resnet20", *extra, "--out", str(out_path))
    assert code == 2 and out == ""
    assert err.count("\n") == 1 and err.startswith("landscape-prune: error: ") and message in err
    assert [p for p in tmp_path.iterdir() if not p.name.endswith(".lock")] == []  # a lock file may stay


def test_other_bad_inputs(capsys, r20, digits, tmp_path):
    existing = tmp_path / "exists.pt"
    existing.write_bytes(b"keep me")
    cases = [
        (["--model", r20, "--arch", "resnet20", "--plan", "layer1.0.conv1=0.5", "--out", str(existing)], "exists"),
        (["--model", r20, "--arch", "resnet20", "--plan", "layer1.0.conv1=0.5"], "need --out"),
        (["--arch", "resnet20", "--plan", "layer1.0.conv1=0.5", "--out", str(tmp_path / "a.pt")], "need --model"),
        (["--model", r20, "--count"], "--arch is needed"),
        (["--model", str(tmp_path / "missing.pt"), "--arch", "resnet20", "--count"], "does not exist"),
        (["--model", r20, "--arch", "vgg9", "--count"], "does not fit"),
        (["--arch", "resnet20", "--count", "--input-shape", "3,0,32"], "--input-shape"),
        (["--model", digits, "--arch", "digits_cnn", "--sensitivity", "--ratios", "0.5:1.0:3",
          "--out", str(tmp_path / "s.h5")], "[0, 1)"),
        (["--model", digits, "--arch", "digits_cnn", "--sensitivity", "--ratios", "a:b",
          "--out", str(tmp_path / "s.h5")], "--ratios"),
        (["--model", digits, "--arch", "digits_cnn", "--sensitivity", "--layers", "features.5", "--dataset",
          "synthetic", "--synthetic-shape", "1,8,8", "--out", str(tmp_path / "s.h5")], "not a conv layer"),
        (["--arch", "resnet20"], "nothing to do"),
        (["--arch", "resnet20", "--count", "--plan", "layer1.0.conv1=0.5", "--out", str(tmp_path / "c.pt")],
         "--count only prints"),
    ]
    for argv, message in cases:
        code, out, err = run(capsys, *argv)
        assert code == 2 and err.count("\n") == 1 and message in err, (argv, err)
    assert existing.read_bytes() == b"keep me"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["exists.pt"]


def test_sensitivity_writes_the_file_and_both_figures_and_resumes(capsys, digits, tmp_path):
    out_path = tmp_path / "sens.h5"

    def argv(ratios="0.25,0.5"):
        return ["--model", digits, "--arch", "digits_cnn", "--sensitivity", "--dataset", "synthetic",
                "--synthetic-shape", "1,8,8", "--synthetic-size", "128", "--samples", "64", "--ratios", ratios,
                "--batch-size", "32", "--threads", "1", "--no-progress", "--out", str(out_path)]

    code, out, err = run(capsys, *argv())
    assert code == 0, err
    assert "6/6 pairs" in out
    assert (tmp_path / "sens.png").stat().st_size > 1000 and (tmp_path / "sens_norms.png").stat().st_size > 1000
    with h5py.File(out_path, "r") as f:
        assert f["acc"].shape == (3, 2) and f["completed"][()].all()
        assert f.attrs["arch"] == "digits_cnn" and f.attrs["samples"] == 64 and f.attrs["split"] == "test"
        first = f["loss"][()]
    code, out, err = run(capsys, *argv())  # the same inputs: resumed, nothing to compute
    assert code == 0 and "6/6 pairs" in out
    with h5py.File(out_path, "r") as f:
        assert (f["loss"][()] == first).all() and "resumed" in f.attrs
    before = out_path.read_bytes()
    code, out, err = run(capsys, *argv(ratios="0.25"))
    assert code == 2 and "another configuration" in err and "ratios" in err and err.count("\n") == 1
    assert out_path.read_bytes() == before


def test_list_presets(capsys):
    code, out, _ = run(capsys, "--list-presets")
    assert code == 0 and len(out.strip().splitlines()) == 8 and "resnet34-C" in out


@pytest.mark.slow
def test_table1(capsys):
    code, out, _ = run(capsys, "--table1")
    assert code == 0 and "35 of the paper's 40 printed numbers" in out and "| resnet56-B | 90,907,264 |" in out
