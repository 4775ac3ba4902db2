"""Every option checked before any work (issue 31, parts 2 and 3): a bad value ends the command in
one line before the first network is built (the one place networks are built is watched) and
leaves no file; options that would be ignored or capped are refused, or warned about in one line."""

from __future__ import annotations

import importlib
import shutil

import pytest
import torch

import landscape.jobs.network as network_module
from landscape.data.datasets import DataSpec
from landscape.models import build_model


@pytest.fixture
def no_network(monkeypatch):
    """A network built is a test failure: every check must come first."""

    def refuse(*args, **kwargs):
        raise AssertionError("a network was built before the options were checked")

    monkeypatch.setattr(network_module, "build_model", refuse)


@pytest.fixture
def mlps(tmp_path):
    paths = []
    for seed in (0, 1):
        torch.manual_seed(seed)
        path = tmp_path / f"mlp{seed}.pt"
        torch.save(build_model("mlp", num_classes=10, in_channels=1).state_dict(), path)
        paths.append(str(path))
    shutil.copy(paths[0], tmp_path / "copy.pt")
    return paths


def run(name: str, args: list[str], capsys) -> tuple[int, str, str]:
    code = importlib.import_module(f"landscape.cli.{name}").main([str(a) for a in args])
    out, err = capsys.readouterr()
    return code, out, err


def refused(name: str, args: list, capsys, fragment: str) -> None:
    code, out, err = run(name, args, capsys)
    lines = err.strip().splitlines()
    assert code == 2 and len(lines) == 1 and "Traceback" not in err, err
    assert lines[0].startswith(f"landscape-{name}: error: ") and fragment in lines[0], lines[0]


@pytest.mark.parametrize("args, fragment", [
    (["--tol", "-1"], "argument --tol: invalid non-negative number value: '-1'"),
    (["--curvature-points", "1"], "a quadratic fit needs at least 3 points per axis, got 1"),
    (["--curvature-points", "2"], "a quadratic fit needs at least 3 points per axis, got 2"),
    (["--measures", "avg_filter,sharpest"], "unknown measure 'sharpest'"),
    (["--device", "cuda:7"], "device cuda:7"),
    (["--line", "1:-1:5"], "MIN < MAX"),
    (["--seq-len", "8"], "--seq-len cuts a token file"),
])
def test_compare_checks_every_option_before_any_work(tmp_path, mlps, no_network, monkeypatch, capsys, args,
                                                     fragment):
    if "cuda" in args[-1] and torch.cuda.is_available():
        pytest.skip("this machine has a GPU 7 or says why not another way")
    monkeypatch.chdir(tmp_path)
    refused("compare", [*mlps, "--arch", "mlp", *args], capsys, fragment)
    assert not (tmp_path / "compare").exists()  # no compare.h5, no folder


@pytest.mark.parametrize("name, args, fragment", [
    ("hessian", ["--density-runs", "0"], "--density-runs: invalid positive integer"),
    ("hessian", ["--png", "{t}/d.png"], "--png draws the density: add --density"),
    ("hessian", ["--seq-len", "16"], "--seq-len cuts a token file (dataset tokens:FILE) into sequences; dataset "
                                     "'digits' is not one"),
    ("surf", ["--seq-len", "16"], "--seq-len cuts a token file"),
    ("surf", ["--same-dir", "--x=-1:1:3"], "the same direction for y as for x needs a y axis"),
    ("surf", ["--model3", "{model}", "--x=-1:1:3", "--y=-1:1:3"], "a third model needs a second one"),
    ("surf", ["--model2", "{model}", "--model3", "{model}", "--x=-1:1:3"], "the plane through three models is 2D"),
    ("align", ["--seq-len", "16"], "--seq-len cuts a token file"),
])
def test_other_commands_check_before_building_a_network(tmp_path, mlps, no_network, capsys, name, args, fragment):
    first = ["--model", mlps[0], "--arch", "mlp"] if name in ("hessian", "surf") else [*mlps, "--arch", "mlp"]
    out = ["--out", str(tmp_path / ("out.pt" if name == "align" else "out.h5"))]
    refused(name, [*first, *[a.format(t=tmp_path, model=mlps[1]) for a in args], *out], capsys, fragment)
    assert not (tmp_path / "out.h5").exists() and not (tmp_path / "out.pt").exists()


def test_connect_refuses_the_options_of_the_other_mode(tmp_path, mlps, no_network, capsys):
    curve = tmp_path / "c.pt"
    curve.write_bytes(b"not read")
    refused("connect", ["--eval", curve, "--curve", "polychain", "--epochs", "5"], capsys,
            "--curve, --epochs are options of training a curve: --eval evaluates the curve of its file as it is")
    refused("connect", ["--eval", curve, "--arch", "mlp"], capsys, "--arch is an option of training a curve")
    refused("connect", [*mlps, "--arch", "mlp", "--points", "9", "--out", tmp_path / "c2.pt"], capsys,
            "--points is an option of --eval")
    refused("connect", [*mlps, "--arch", "mlp", "--repair-stats", "--t=0:1:5", "--out", tmp_path / "c2.pt"], capsys,
            "--repair-stats, --t are options of --eval")
    assert not (tmp_path / "c2.pt").exists() and not (tmp_path / "c2.run").exists()


@pytest.mark.parametrize("name", ["connect", "align"])
def test_the_same_network_at_both_ends_is_refused_before_any_work(tmp_path, mlps, no_network, capsys, name):
    out = tmp_path / "out.pt"
    refused(name, [mlps[0], mlps[0], "--arch", "mlp", "--out", out], capsys, "are one file given twice")
    refused(name, [mlps[0], tmp_path / "copy.pt", "--arch", "mlp", "--out", out], capsys,
            "are the same network (files of the same SHA-256)")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["copy.pt", "mlp0.pt", "mlp1.pt"]


def test_more_samples_than_the_data_has_is_said_once(recwarn):
    train, indices = DataSpec(samples=2000).load("train")
    assert len(train) == len(indices) == 1438  # all of digits' training split
    [warning] = recwarn.list
    assert str(warning.message) == ("`samples` 2,000 is more than the 1,438 samples of digits (train): all 1,438 "
                                    "are used")
    DataSpec(samples=1438).load("train")  # exactly all: nothing to say
    assert len(recwarn.list) == 1
    DataSpec(samples=2000).load("test", what="subset")  # landscape-train's name for it
    assert str(recwarn.list[1].message).startswith("`subset` 2,000 is more than the 359 samples of digits (test)")


def test_hessian_warns_in_one_line_about_samples_it_cannot_take(tmp_path, mlps, capsys):
    code, out, err = run("hessian", ["--model", mlps[0], "--arch", "mlp", "--samples", "2000", "--top-k", "1",
                                     "--max-iter", "8", "--no-progress", "--out", tmp_path / "h.h5"], capsys)
    assert code == 0, err
    assert err.splitlines() == ["landscape-hessian: warning: --samples 2,000 is more than the 1,438 samples of "
                                "digits (train): all 1,438 are used", *err.splitlines()[1:]]
    assert sum("warning" in line for line in err.splitlines()) == 1
