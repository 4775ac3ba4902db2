"""Every metric of an adaptive surface, one of several arrays included, is evaluated at the points
the refinement chose and nowhere else (the Hessian's two arrays through landscape-surf: the slow
test of tests/engine/test_adaptive.py)."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from helpers import mlp, mlp_data

import landscape
from landscape.engine.options import Output
from landscape.evaluation.options import EvalOptions
from landscape.space.grid import Grid


class Extremes:
    """Two arrays from one call: the largest and smallest weight of the first layer."""

    names = ("w_max", "w_min")

    def __call__(self, model):
        w = next(model.parameters()).detach()
        return {"w_max": float(w.max()), "w_min": float(w.min())}


def test_a_metric_of_two_arrays_is_evaluated_where_the_loss_is(tmp_path):
    model, data = mlp(), mlp_data()
    theta0 = next(model.parameters()).detach().clone()
    s = landscape.surface(model, data, Grid((-1, 1, 9), (-1, 1, 9), adaptive=0.05), metrics={"w": Extremes()},
                          evaluation=EvalOptions(batch_size=48), output=Output(tmp_path / "s.h5", progress=False))
    mask = s.arrays["evaluated"].astype(bool)
    assert 0 < mask.sum() < mask.size
    for name in ("w_max", "w_min", "train_loss"):
        assert np.isfinite(s.values[name]).all(), name
        assert np.array_equal(s.done[name], mask), name
    key = next(iter(s.directions[0]))  # the first layer's weight
    d1, d2 = s.directions[0][key], s.directions[1][key]
    for j, i in zip(*np.nonzero(mask), strict=True):  # at each evaluated point: the moved weights' extremes
        w = theta0 + float(s.x[i]) * d1 + float(s.y[j]) * d2
        assert s.values["w_max"][j, i] == pytest.approx(torch.max(w).item(), rel=1e-6, abs=1e-7)
        assert s.values["w_min"][j, i] == pytest.approx(torch.min(w).item(), rel=1e-6, abs=1e-7)
