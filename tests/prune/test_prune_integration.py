"""Pruned minima through the rest of the tool: surfaces of a pruned checkpoint, retraining from
it, training a pruned architecture from scratch."""

from __future__ import annotations

import numpy as np
import torch

import landscape as ls
from landscape.cli import prune as prune_cli
from landscape.cli import surf as surf_cli
from landscape.cli import train as train_cli
from landscape.prune import prune_filters

PLAN = "features.0=0.5,features.3=0.25"


def test_a_pruned_checkpoints_surface_equals_the_in_memory_models(tmp_path, digits_ckpt, capsys):
    out = tmp_path / "p.pt"
    assert prune_cli.main(["--model", digits_ckpt, "--arch", "digits_cnn", "--in-channels", "1", "--plan", PLAN,
                           "--out", str(out)]) == 0, capsys.readouterr().err
    assert surf_cli.main(["--model", str(out), "--arch", "digits_cnn", "--samples", "80", "--x=-1:1:3",
                          "--y=-1:1:3", "--out", str(tmp_path / "p.h5"), "--no-progress"]) == 0, capsys.readouterr().err
    from_file = ls.read_surface(tmp_path / "p.h5")
    model = ls.load_model("digits_cnn", digits_ckpt, in_channels=1)
    small = prune_filters(model, PLAN)
    assert small.features[0].weight.shape[0] == 8 and small.features[3].weight.shape[0] == 24
    data = ls.load_dataset("digits", split="train").subset(80)[0]
    in_memory = ls.surface(small, data, ls.Grid((-1, 1, 3), (-1, 1, 3)), output=ls.Output(progress=False))
    np.testing.assert_allclose(from_file.loss, in_memory.loss, rtol=1e-6)
    np.testing.assert_allclose(from_file.acc, in_memory.acc, atol=1e-9)
    assert from_file.attrs["checkpoint_pruned"].startswith("pruned")


def test_retraining_from_a_pruned_checkpoint_and_training_one_from_scratch(tmp_path, digits_ckpt, capsys):
    pruned = tmp_path / "p.pt"
    assert prune_cli.main(["--model", digits_ckpt, "--arch", "digits_cnn", "--in-channels", "1", "--plan", PLAN,
                           "--out", str(pruned)]) == 0
    base = ["--arch", "digits_cnn", "--dataset", "digits", "--epochs", "1", "--batch-size", "128", "--no-progress"]
    assert train_cli.main(base + ["--init-from", str(pruned), "--lr", "0.001", "--out", str(tmp_path / "re")]) == 0
    assert train_cli.main(base + ["--plan", PLAN, "--out", str(tmp_path / "scratch")]) == 0, capsys.readouterr().err
    for run in ("re", "scratch"):
        ckpt = torch.load(tmp_path / run / "model_1.pt", weights_only=True)
        assert ckpt["widths"]["features.0"] == 8 and ckpt["widths"]["features.3"] == 24
        net = ls.load_model("digits_cnn", tmp_path / run / "model_1.pt", in_channels=1)  # rebuilt from the file
        assert net.features[3].weight.shape == (24, 8, 3, 3)
    re = torch.load(tmp_path / "re" / "model_0.pt", weights_only=True)
    start = torch.load(pruned, weights_only=True)["state_dict"]
    assert torch.equal(re["state_dict"]["features.0.weight"], start["features.0.weight"])  # retraining starts there
    assert re["args"]["milestones"] == []  # a constant rate, as the paper's retraining
