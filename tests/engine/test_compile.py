"""The real ``torch.compile`` path, once (slow: inductor compiles for tens of seconds on 2 cores).

Elsewhere ``torch.compile`` is replaced by a stand-in (tests/evaluation/test_evaluate.py). Here inductor
really compiles the model that ``landscape-surf --compile`` evaluates, and the surface must equal
the eager one. Only the speed check is decided for the test: a compiled model that is not faster
is refused, and whether it is faster depends on the machine's load, not on correctness.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch

from landscape.cli import surf as surf_cli
from landscape.evaluation.evaluator import Evaluator
from landscape.io.surface_file import read_surface


@pytest.mark.slow
def test_a_compiled_surface_equals_the_eager_one(tmp_path, digits_ckpt, monkeypatch, capsys):
    real_time, real_compile = Evaluator._time, torch.compile
    compiled = []

    def timed(self, batch, dtype, model=None, rounds=2):
        real_time(self, batch, dtype, model, rounds)  # runs (and so compiles) the model for real
        return 1.0 if model is None else 0.5  # the compiled model counts as faster

    def spy(model, *args, **kwargs):
        compiled.append(real_compile(model, *args, **kwargs))
        return compiled[-1]

    monkeypatch.setattr(Evaluator, "_time", timed)
    monkeypatch.setattr(torch, "compile", spy)
    base = ["--model", digits_ckpt, "--arch", "digits_cnn", "--samples", "64", "--batch-size", "32",
            "--x=-1:1:3", "--y=-1:1:3", "--threads", "1", "--no-progress"]
    eager, fast = tmp_path / "eager.h5", tmp_path / "compiled.h5"
    assert surf_cli.main([*base, "--out", str(eager)]) == 0, capsys.readouterr().err
    assert not compiled
    assert surf_cli.main([*base, "--compile", "--out", str(fast)]) == 0, capsys.readouterr().err
    assert len(compiled) == 1 and type(compiled[0]).__name__ == "OptimizedModule"
    a, b = read_surface(eager), read_surface(fast)
    assert b.completed.all()
    for name in a.values:
        np.testing.assert_allclose(b.values[name], a.values[name], rtol=1e-4, atol=1e-6, err_msg=name)
    assert np.ptp(a.values["train_loss"]) > 0.01  # a surface, not one value repeated
