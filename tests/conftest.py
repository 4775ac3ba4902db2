"""Shared fixtures: tiny checkpoints, and a private cache so the demo never touches ~/.cache; a run
that leaves anything new in the checkout fails."""

from __future__ import annotations

import os
import sys

import pytest
import torch
from helpers import checkout_changes, save_digits_cnn

sys.path.insert(0, os.path.dirname(__file__))  # so "quadratic:..." specs import tests/quadratic.py


@pytest.fixture(autouse=True)
def _private_cache(tmp_path_factory, monkeypatch):
    monkeypatch.setenv("LANDSCAPE_CACHE", str(tmp_path_factory.getbasetemp() / "cache"))
    # One thread wherever the thread policy decides (library calls, child processes): torch splits
    # its sums by thread count, and the policy's count follows the machine's load, so a test that
    # compares two runs bit for bit would otherwise depend on how busy CI's machine was. Tests of
    # the policy itself set or remove the variable.
    monkeypatch.setenv("OMP_NUM_THREADS", "1")
    torch.set_num_threads(1)


@pytest.fixture
def digits_ckpt(tmp_path) -> str:
    return save_digits_cnn(tmp_path / "digits_cnn.pt")


@pytest.fixture(scope="module")
def model_path(tmp_path_factory) -> str:
    """A randomly initialized digits_cnn's state dict, shared by a test module."""
    from landscape.models import build_model

    torch.manual_seed(0)
    path = tmp_path_factory.mktemp("model") / "digits_cnn.pt"
    torch.save(build_model("digits_cnn", num_classes=10, in_channels=1).state_dict(), path)
    return str(path)


@pytest.fixture(scope="session")
def kinds(tmp_path_factory):
    """One file of every kind, each made by its command: surfaces (random directions, the
    trajectory's, 1D), a trajectory, a Hessian summary and a pruning sensitivity scan."""
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


def pytest_addoption(parser):
    parser.addoption("--slow", action="store_true", help="also run the tests marked slow (the whole suite)")


def pytest_collection_modifyitems(config, items):
    if config.getoption("--slow"):
        return
    skip = pytest.mark.skip(reason="slow: run with --slow")
    for item in items:
        if "slow" in item.keywords:
            item.add_marker(skip)


CHECKOUT_BEFORE = pytest.StashKey[set]()


def pytest_sessionstart(session):
    before = checkout_changes()
    if before is not None:
        session.config.stash[CHECKOUT_BEFORE] = before


def pytest_sessionfinish(session, exitstatus):
    """Fail the run if it left a new file or folder in the checkout (tests write under tmp_path;
    caches such as .grimp_cache/, .import_linter_cache/ or .benchmarks/ do not belong there)."""
    before, after = session.config.stash.get(CHECKOUT_BEFORE, None), checkout_changes()
    if before is None or after is None or not after - before:
        return
    reporter = session.config.pluginmanager.get_plugin("terminalreporter")
    lines = ["the tests left these in the checkout:", *sorted(after - before)]
    if reporter is not None:
        reporter.write("\n")  # after the progress line
        reporter.write_line("\n".join(lines), red=True, bold=True)
    else:
        print("\n".join(lines), file=sys.stderr)
    session.exitstatus = pytest.ExitCode.TESTS_FAILED
