"""Torch-Pruning (when installed) agrees with our VGG-16-A: same filters, same smaller network."""

from __future__ import annotations

import pytest
import torch
from helpers import randomized

from landscape.models import build_model
from landscape.prune import kept, preset, prune_filters

tp = pytest.importorskip("torch_pruning")


def test_vgg16_A_agrees_with_torch_pruning():
    model = randomized(build_model("vgg16"), seed=21)
    ours = prune_filters(model, "vgg16-A").eval()
    theirs = randomized(build_model("vgg16"), seed=21)
    mods = dict(theirs.named_modules())
    # Torch-Pruning's "standard L1-norm of the first layer in a group", scored on the unpruned
    # network (the independent strategy), then removed through its dependency graph
    graph = tp.DependencyGraph().build_dependency(theirs, example_inputs=torch.randn(1, 3, 32, 32))
    importance = tp.importance.GroupMagnitudeImportance(p=1, group_reduction="first", normalizer=None)
    removals = {}
    for name, fraction in preset("vgg16-A").items():
        conv = mods[name]
        group = graph.get_pruning_group(conv, tp.prune_conv_out_channels, idxs=list(range(conv.out_channels)))
        scores = importance(group)
        n_remove = conv.out_channels - kept(conv.out_channels, fraction)
        removals[name] = torch.argsort(scores, stable=True)[:n_remove].tolist()
    for name, idxs in removals.items():
        group = graph.get_pruning_group(mods[name], tp.prune_conv_out_channels, idxs=idxs)
        assert graph.check_pruning_group(group)
        group.prune()
    theirs.eval()
    assert {k: tuple(v.shape) for k, v in theirs.state_dict().items()} == \
        {k: tuple(v.shape) for k, v in ours.state_dict().items()}
    x = torch.randn(2, 3, 32, 32)
    with torch.no_grad():
        assert torch.allclose(theirs(x), ours(x), atol=1e-5)
