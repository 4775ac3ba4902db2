"""A user's metrics: one that takes gradients gets them when it says so (and is refused in one line
when it does not), and one whose source changed is refused on resume."""

from __future__ import annotations

import importlib

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from helpers import digits_mlp

import landscape as ls
from landscape.errors import LandscapeError
from landscape.evaluation.metrics import needs_grad


def test_a_gradient_metric_gets_gradients_when_it_asks():
    model, X, y = digits_mlp()

    def grad_norm(m):
        g = torch.autograd.grad(F.cross_entropy(m(X), y), list(m.parameters()))
        return torch.cat([t.flatten() for t in g]).norm().item()

    with pytest.raises(LandscapeError, match="metric 'grad_norm' takes gradients.*needs_grad = True"):
        ls.surface(model, (X, y), ls.Grid("-1:1:3"), metrics={"grad_norm": grad_norm},
                   output=ls.Output(progress=False))
    expected = grad_norm(model)  # at the origin, the middle point
    s = ls.surface(model, (X, y), ls.Grid("-1:1:3"), metrics={"grad_norm": needs_grad(grad_norm)},
                   output=ls.Output(progress=False))
    assert s.values["grad_norm"][1] == pytest.approx(expected, rel=1e-5)
    assert np.isfinite(s.values["grad_norm"]).all() and len(set(s.values["grad_norm"].round(6))) == 3


def test_a_metric_whose_code_changed_is_refused_on_resume(tmp_path, monkeypatch):
    model, X, y = digits_mlp()
    monkeypatch.syspath_prepend(str(tmp_path))
    module = tmp_path / "usermetric_24.py"
    module.write_text("def metric(model):\n    return 1.0\n")
    import usermetric_24

    out = str(tmp_path / "s.h5")
    run = dict(metrics={"m": usermetric_24.metric}, output=ls.Output(path=out, progress=False))
    ls.surface(model, (X, y), ls.Grid("-1:1:3"), **run)
    ls.surface(model, (X, y), ls.Grid("-1:1:3"), **run)  # the same code resumes (nothing to do)
    module.write_text("def metric(model):\n    return 2.0  # changed\n")
    importlib.reload(usermetric_24)
    with pytest.raises(LandscapeError, match="m was computed with source_sha256"):
        ls.surface(model, (X, y), ls.Grid("-1:1:3"), metrics={"m": usermetric_24.metric},
                   output=ls.Output(path=out, progress=False))
