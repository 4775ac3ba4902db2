"""L1-norm filter pruning (Li et al., *Pruning Filters for Efficient ConvNets*, ICLR'17).

    from landscape import prune
    prune.count(model, (3, 32, 32))                       # (FLOPs, params), the paper's convention
    small = prune.prune_filters(model, "resnet56-B")      # a new, physically smaller model
    small = prune.prune_filters(model, {"layer1.0.conv1": 0.5}, strategy="greedy")
    result = prune.sensitivity(model, data, ratios=[0.1, 0.2, ...], evaluation=EvalOptions(...))  # Fig. 2(b)
    prune.save_pruned("r56B.pt", small, original=model, arch="resnet56", plan=..., ...)
    prune.resize_(build_model("resnet56"), prune.widths_of(torch.load("r56B.pt")))  # rebuild

Which layers share channels is traced from the model's forward pass (:mod:`.graph`), so any
fx-traceable conv net of convs, BatchNorm, pooling, activations, residual sums, concatenations
and a flatten-then-linear head is handled, not only the zoo's.
"""

from landscape.io.checkpoint import widths_of
from landscape.prune.checkpoints import save_pruned
from landscape.prune.counts import LayerCount, conv_output_shapes, count, layer_counts, reduction
from landscape.prune.graph import ChannelGraph, Group, channel_graph
from landscape.prune.plans import (
    PRESETS,
    Preset,
    check_preset,
    kept,
    list_presets,
    parse_plan,
    preset,
    preset_info,
    reference_model,
    resolve_plan,
)
from landscape.prune.removal import (
    STRATEGIES,
    conv_widths,
    filter_scores,
    plan_widths,
    prune_filters,
    resize_,
    select,
)
from landscape.prune.scan import SensitivityResult, filter_norms, read_sensitivity, sensitivity
from landscape.prune.table import table1

__all__ = [
    "PRESETS", "STRATEGIES", "ChannelGraph", "Group", "LayerCount", "Preset", "SensitivityResult",
    "channel_graph", "check_preset", "conv_output_shapes", "conv_widths", "count", "filter_norms", "filter_scores",
    "kept", "layer_counts", "list_presets", "parse_plan", "plan_widths", "preset", "preset_info",
    "prune_filters", "read_sensitivity", "reduction", "reference_model", "resize_", "resolve_plan",
    "save_pruned", "select", "sensitivity", "table1", "widths_of",
]
