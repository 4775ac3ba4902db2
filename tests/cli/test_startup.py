"""Start-up cost: the batch-size probe costs a few evaluations of the data at most, and a later
run of the same kind (model, input shape, device, threads) reuses its choice from the cache."""

from __future__ import annotations

import torch
from torch import nn

from landscape.evaluation.evaluator import Evaluator
from landscape.runtime.cache import cache_dir, recall, remember


class Counting(nn.Module):
    def __init__(self):
        super().__init__()
        self.net = nn.Sequential(nn.Flatten(), nn.Linear(64, 32), nn.ReLU(), nn.Linear(32, 10))
        self.samples = 0

    def forward(self, x):
        self.samples += len(x)
        return self.net(x)


def data(n: int = 1000):
    g = torch.Generator().manual_seed(0)
    return torch.randn(n, 1, 8, 8, generator=g), torch.randint(0, 10, (n,), generator=g)


def test_the_probe_costs_a_few_evaluations_and_is_remembered(tmp_path, monkeypatch):
    monkeypatch.setenv("LANDSCAPE_CACHE", str(tmp_path / "cache"))
    x, y = data()
    torch.manual_seed(0)
    model = Counting()
    ev = Evaluator(model, (x, y))
    assert 64 <= ev.batch_size <= 512
    assert model.samples <= 3 * len(x)  # the old probe ran ~9 evaluations of 1,000 samples
    assert (tmp_path / "cache" / "batch_size.json").exists()

    again = Counting()
    ev2 = Evaluator(again, (x, y))
    assert ev2.batch_size == ev.batch_size and again.samples <= 2  # only the check that the model fits

    threads = torch.get_num_threads()
    try:
        torch.set_num_threads(threads + 1)  # another thread count: measured again
        other = Counting()
        Evaluator(other, (x, y))
        assert other.samples > len(x) // 2
    finally:
        torch.set_num_threads(threads)


def test_the_cache_is_only_a_speed_up(tmp_path, monkeypatch):
    monkeypatch.setenv("LANDSCAPE_CACHE", str(tmp_path / "cache"))
    assert cache_dir() == str(tmp_path / "cache")
    assert recall("t", {"a": 1}) is None
    remember("t", {"a": 1}, 128)
    assert recall("t", {"a": 1}) == 128 and recall("t", {"a": 2}) is None
    (tmp_path / "cache" / "t.json").write_text("{not json")
    assert recall("t", {"a": 1}) is None
    remember("t", {"a": 1}, 64)  # a damaged table is replaced
    assert recall("t", {"a": 1}) == 64
    monkeypatch.setenv("LANDSCAPE_CACHE", "/proc/no/such/folder")
    remember("t", {"a": 1}, 64)  # an unwritable cache: ignored
    x, y = data(300)
    assert Evaluator(Counting(), (x, y)).batch_size in (64, 128, 256, 300)
