"""landscape-compare on three checkpoints made by landscape-train: the table against the library
called directly, Kendall's tau against scipy, the figures, resume per (checkpoint, measure), and
bad input (one line, exit 2, nothing written)."""

from __future__ import annotations

import csv
import os

import numpy as np
import pytest
import torch

from landscape.cli.compare import main
from landscape.evaluation.options import EvalOptions
from landscape.io.surface_file import read_surface, write_surface

RUNS = (("bs16", ["--batch-size", "16"]), ("bs64", ["--batch-size", "64"]),
        ("bs16_wd", ["--batch-size", "16", "--weight-decay", "0.01"]))
SMALL = ["--arch", "digits_cnn", "--samples", "96", "--mc-samples", "4", "--steps", "2", "--line", "-1:1:5",
         "--plane", "-1:1:3", "--measures", "avg_filter,worst_filter,epsilon,curvature", "--threads", "1"]


@pytest.fixture(scope="module")
def checkpoints(tmp_path_factory) -> list[str]:
    from landscape.cli.train import main as train

    root = tmp_path_factory.mktemp("runs")
    paths = []
    for name, extra in RUNS:
        out = root / name
        assert train(["--arch", "digits_cnn", "--dataset", "digits", "--epochs", "1", "--subset", "128", "--lr", "0.05",
                      "--device", "cpu", "--no-progress", "--out", str(out), *extra]) == 0
        paths.append(str(out / "model_1.pt"))
    return paths


def read_csv(path) -> list[dict]:
    with open(path) as f:
        return list(csv.DictReader(f))


@pytest.mark.slow
def test_compare_writes_the_table_and_figures(checkpoints, tmp_path, monkeypatch, capsys):
    out = tmp_path / "cmp"
    assert main([*checkpoints, *SMALL, "--out", str(out)]) == 0
    for name in ("compare.csv", "compare.md", "compare.h5", "curves_1d.png", "contours_2d.png",
                 "gap_vs_measure.png"):
        assert (out / name).is_file(), name
    rows = read_csv(out / "compare.csv")
    assert [r["checkpoint"] for r in rows] == checkpoints
    assert "bs=16" in rows[0]["title"] and "bs=64" in rows[1]["title"] and "wd=0.01" in rows[2]["title"]

    # the library called directly on the same model and data gives the table's numbers
    from landscape import sharpness
    from landscape.data.datasets import DataSpec
    from landscape.evaluation.evaluator import Evaluator
    from landscape.jobs.network import load_model

    train = DataSpec(samples=96).load("train")[0]
    test = DataSpec(samples=96).load("test")[0]
    for path, row in zip(checkpoints, rows, strict=True):
        model = load_model("digits_cnn", path, in_channels=1)
        train_acc = Evaluator(model, train, EvalOptions(batch_size=256))()["acc"]
        assert float(row["train_err"]) == pytest.approx(100 - train_acc)
        assert float(row["gap"]) == pytest.approx(
            (100 - Evaluator(model, test, EvalOptions(batch_size=256))()["acc"]) - float(row["train_err"]), abs=1e-9)
        avg = sharpness.average_case(model, train, radius=0.05, samples=4)
        assert float(row["avg_filter"]) == pytest.approx(avg.value, rel=1e-5, abs=1e-9)
        assert float(row["avg_filter_stderr"]) == pytest.approx(avg.stderr, rel=1e-5, abs=1e-9)
        assert row["avg_filter_converged"] == str(avg.converged)
        eps = sharpness.epsilon(model, train, eps=1e-3, steps=2)
        assert float(row["epsilon"]) == pytest.approx(eps.value, rel=1e-5, abs=1e-9)
        assert row["epsilon_converged"] == str(eps.converged) and row["epsilon_setting"] == eps.setting()

    from scipy.stats import kendalltau

    md = (out / "compare.md").read_text()
    gaps = [float(r["gap"]) for r in rows]
    ref = kendalltau([float(r["worst_filter"]) for r in rows], gaps)
    assert f"| worst_filter | {ref.statistic:.3f} | {ref.pvalue:.3g} |" in md
    assert "proves little" in md

    surf = read_surface(out / "compare.h5")
    assert surf.completed.all() and surf.shape == (6, 3)  # (train, test, 4 measures) x 3 checkpoints
    assert "checkpoint_sha256" in surf.attrs and "kendall" in surf.attrs

    # resume: a finished file computes nothing; one (checkpoint, measure) undone computes that one
    import landscape.jobs.compare as job

    calls = []
    real = job._measure
    monkeypatch.setattr(job, "_measure", lambda name, *a, **k: calls.append(name) or real(name, *a, **k))
    assert main([*checkpoints, *SMALL, "--out", str(out)]) == 0
    assert calls == []
    for name in surf.done:
        surf.done[name][4, 1] = False  # epsilon of the second checkpoint
        surf.values[name][4, 1] = np.nan
    write_surface(out / "compare.h5", surf)
    assert main([*checkpoints, *SMALL, "--out", str(out)]) == 0
    assert calls == ["epsilon"]
    assert read_csv(out / "compare.csv") == rows

    # another configuration is refused, and the file kept
    before = (out / "compare.h5").read_bytes()
    capsys.readouterr()
    assert main([*checkpoints, *SMALL, "--radius", "0.1", "--out", str(out)]) == 2
    err = capsys.readouterr().err.strip()
    assert "another configuration" in err and len(err.splitlines()) == 1
    assert (out / "compare.h5").read_bytes() == before


def _random_ckpt(path, arch: str, seed: int = 0) -> str:
    from landscape.models import build_model

    torch.manual_seed(seed)
    torch.save({"state_dict": build_model(arch, num_classes=10, in_channels=1).state_dict(), "arch": arch}, path)
    return str(path)


def test_the_table_says_what_each_column_is_and_marks_what_did_not_converge(tmp_path):
    """compare.csv has, per measure, whether it converged and its definition; compare.md marks the
    unconverged values and has a row per column (paper, parameters perturbed, ...); compare.h5
    holds the same flags."""
    from landscape import sharpness
    from landscape.jobs.compare import UNCONVERGED

    a = _random_ckpt(tmp_path / "a.pt", "digits_cnn", 0)
    b = _random_ckpt(tmp_path / "b.pt", "digits_cnn", 1)
    out = tmp_path / "cmp"
    assert main([a, b, "--arch", "digits_cnn", "--samples", "32", "--measures", "avg_elementwise,worst_filter",
                 "--mc-samples", "2", "--steps", "1", "--restarts", "1", "--no-plot", "--threads", "1",
                 "--out", str(out)]) == 0
    rows = read_csv(out / "compare.csv")
    assert [r["avg_elementwise_converged"] for r in rows] == ["False", "False"]  # 2 samples: 5 % not reached
    ada = sharpness.definition("average_case", "elementwise", "none", 0.05)
    for r in rows:
        assert "every parameter" in r["avg_elementwise_setting"] and ada["paper"] in r["avg_elementwise_setting"]
        assert "biases and BatchNorm left out" in r["worst_filter_setting"]
    md = (out / "compare.md").read_text()
    marked = [line for line in md.splitlines() if line.startswith("| 1 |") or line.startswith("| 2 |")]
    assert all(line.count(UNCONVERGED) >= 1 for line in marked) and f"{UNCONVERGED} not converged" in md
    assert f"| avg_elementwise | {ada['paper']} | every parameter | T = |theta| |" in md
    surf = read_surface(out / "compare.h5")
    flags = surf.values["converged"][2:]  # the measures' rows (train and test come first)
    assert [[bool(x) for x in col] for col in flags.T] == \
        [[r["avg_elementwise_converged"] == "True", r["worst_filter_converged"] == "True"] for r in rows]
    assert "every parameter" in surf.attrs["measures"]


def test_data_without_class_labels_is_refused(tmp_path, capsys):
    """quadratic:data has float (regression) targets: no error, no gap."""
    import quadratic

    paths = []
    for k in range(2):
        torch.manual_seed(k)
        paths.append(str(tmp_path / f"q{k}.pt"))
        torch.save(quadratic.model().state_dict(), paths[-1])
    out = tmp_path / "cmp"
    assert main([*paths, "--arch", "quadratic:model", "--dataset", "quadratic:data", "--loss", "mse",
                 "--out", str(out)]) == 2
    err = capsys.readouterr().err.strip()
    assert "no class labels" in err and len(err.splitlines()) == 1, err
    assert not out.exists()


@pytest.mark.parametrize("case, message", [
    ("one", "at least 2 checkpoints"),
    ("archs", "different architectures"),
    ("measure", "unknown measure"),
    ("radius", "--radius"),
    ("restarts", "--restarts"),
    ("tol", "tol"),
    ("twice", "given twice"),
])
def test_bad_input_is_one_line_and_writes_nothing(case, message, tmp_path, capsys):
    a = _random_ckpt(tmp_path / "a.pt", "digits_cnn", 0)
    b = _random_ckpt(tmp_path / "b.pt", "digits_cnn", 1)
    out = tmp_path / "cmp"
    args = {
        "one": [a],
        "archs": [a, _random_ckpt(tmp_path / "m.pt", "mlp")],
        "measure": [a, b, "--measures", "sharpest"],
        "radius": [a, b, "--radius", "0"],
        "restarts": [a, b, "--restarts", "0"],
        "tol": [a, b, "--tol", "1.5"],
        "twice": [a, a],
    }[case]
    assert main([*args, "--arch", "digits_cnn", "--samples", "32", "--out", str(out)]) == 2
    err = capsys.readouterr().err.strip()
    assert message in err and len(err.splitlines()) == 1, err
    assert not out.exists()
    assert sorted(os.listdir(tmp_path)) == sorted(p for p in os.listdir(tmp_path) if p.endswith(".pt"))


@pytest.mark.mpi
@pytest.mark.slow
def test_mpirun_gives_the_serial_table(checkpoints, tmp_path):
    """The (checkpoint, measure) jobs spread over 2 ranks give the serial table."""
    from helpers import run_command

    args = [*checkpoints, *SMALL, "--line", "none", "--plane", "none"]
    for ranks, out in ((1, "serial"), (2, "mpi")):
        run = run_command(ranks, "compare", *args, "--out", tmp_path / out)
        assert run.returncode == 0, run.stderr
    serial, mpi = read_csv(tmp_path / "serial" / "compare.csv"), read_csv(tmp_path / "mpi" / "compare.csv")
    assert serial == mpi
    assert read_surface(tmp_path / "mpi" / "compare.h5").attrs["mpi_ranks"] == 2
