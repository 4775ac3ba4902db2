"""Shared fixtures: tiny checkpoints, and a private cache so the demo never touches ~/.cache."""

from __future__ import annotations

import os
import sys

import pytest
import torch
from helpers import save_digits_cnn

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


def pytest_addoption(parser):
    parser.addoption("--slow", action="store_true", help="also run the tests marked slow (the whole suite)")


def pytest_collection_modifyitems(config, items):
    if config.getoption("--slow"):
        return
    skip = pytest.mark.skip(reason="slow: run with --slow")
    for item in items:
        if "slow" in item.keywords:
            item.add_marker(skip)
