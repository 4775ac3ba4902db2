"""The jobs apply the thread policy at the edge: training and the demo's training run under the
policy's count (or the one given) and give the caller's setting back."""

from __future__ import annotations

import functools

import torch

from landscape.runtime import threads as thread_policy


def _busy_machine(monkeypatch, idle: int = 1) -> None:
    """The caller runs with 2 torch threads, but the thread policy finds ``idle`` cores idle."""
    monkeypatch.delenv("OMP_NUM_THREADS", raising=False)
    monkeypatch.setattr(thread_policy, "default_threads", lambda ranks_on_node=1: idle)
    torch.set_num_threads(2)


def test_the_training_job_follows_the_thread_policy_and_takes_threads(tmp_path, monkeypatch):
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


def test_the_demo_is_trained_under_the_thread_policy(monkeypatch, tmp_path):
    from landscape.jobs import demo

    monkeypatch.setenv("LANDSCAPE_CACHE", str(tmp_path))  # an empty cache: the demo network is trained here
    _busy_machine(monkeypatch)
    monkeypatch.setattr(demo, "DEMO_EPOCHS", 1)
    monkeypatch.setattr(demo, "fit", functools.partial(demo.fit, epochs=1))  # its default was bound before
    seen = []
    build = demo.build_model
    monkeypatch.setattr(demo, "build_model", lambda *a, **k: seen.append(torch.get_num_threads()) or build(*a, **k))
    path = demo.demo_checkpoint(verbose=False)
    assert seen == [1] and torch.get_num_threads() == 2
    saved = torch.load(path, weights_only=True)
    assert saved["epoch"] == 1 and 0 <= saved["accuracy"] <= 100
    assert saved["state_dict"].keys() == build("digits_cnn", num_classes=10, in_channels=1).state_dict().keys()
