"""The thread policy is applied once, by the command: the library leaves torch's count alone unless
given one, and a count the command decided reaches every computation it runs."""

from __future__ import annotations

import pytest
import torch
from helpers import save_digits_cnn
from torch import nn

from landscape import sharpness
from landscape.cli import compare as compare_cli
from landscape.evaluation.evaluator import Evaluation, Evaluator
from landscape.evaluation.options import EvalOptions
from landscape.runtime.threads import choose_threads, using_threads


@pytest.fixture
def observed(monkeypatch) -> list[int]:
    """The torch thread count at every point a surface evaluates (Evaluation is the per-point metric
    of loss and accuracy: the surfaces' own, not the measures')."""
    counts: list[int] = []
    call = Evaluation.__call__

    def recording(self, model):
        counts.append(torch.get_num_threads())
        return call(self, model)

    monkeypatch.setattr(Evaluation, "__call__", recording)
    return counts


def test_compare_s_threads_reach_its_per_minimum_surfaces(tmp_path, monkeypatch, observed):
    monkeypatch.setenv("OMP_NUM_THREADS", "2")  # the policy would say 2; the command says 1
    a, b = save_digits_cnn(tmp_path / "a.pt", seed=0), save_digits_cnn(tmp_path / "b.pt", seed=1)
    code = compare_cli.main([a, b, "--arch", "digits_cnn", "--samples", "64", "--measures", "avg_none",
                             "--mc-samples", "2", "--line=-1:1:3", "--plane", "none", "--threads", "1",
                             "--out", str(tmp_path / "cmp")])
    assert code == 0
    assert len(observed) == 2 * 3 and set(observed) == {1}  # two minima, three points each, all at 1 thread


def test_curvature_leaves_torch_s_count_alone(observed, monkeypatch):
    monkeypatch.setenv("OMP_NUM_THREADS", "2")  # a policy applied inside would run at 2
    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(4, 8), nn.Tanh(), nn.Linear(8, 3))
    x, y = torch.randn(32, 4), torch.randint(0, 3, (32,))
    assert torch.get_num_threads() == 1
    sharpness.curvature(model, (x, y), points=3)
    assert observed and set(observed) == {1}
    assert torch.get_num_threads() == 1


def test_an_explicit_count_is_used_for_the_call_and_restored():
    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(4, 8), nn.Tanh(), nn.Linear(8, 3))
    data = (torch.randn(32, 4), torch.randint(0, 3, (32,)))
    seen = []

    def forward(m, batch):
        seen.append(torch.get_num_threads())
        return m(batch[0])

    ev = Evaluator(model, data, EvalOptions(batch_size=16, threads=2, forward_fn=forward))
    assert ev.threads == 2 and torch.get_num_threads() == 1 and set(seen) == {2}
    seen.clear()
    ev()
    assert set(seen) == {2} and torch.get_num_threads() == 1
    ev = Evaluator(model, data, EvalOptions(batch_size=16, forward_fn=forward))
    seen.clear()
    ev()
    assert ev.threads == 1 and set(seen) == {1}
    with using_threads(None) as n:  # None: torch's count, untouched
        assert n == 1 == torch.get_num_threads()
    with using_threads(3) as n:
        assert n == 3 == torch.get_num_threads()
    assert torch.get_num_threads() == 1


def test_the_policy_is_the_commands(monkeypatch):
    monkeypatch.setenv("OMP_NUM_THREADS", "3")
    assert choose_threads(None) == 3 and choose_threads(2) == 2
    assert torch.get_num_threads() == 1  # deciding changes nothing
