"""Ranking filters by L1 norm and removing them physically: a smaller, dense model, no masks.

Removing filters of a conv removes its output channels, the matching entries of every BatchNorm
on them (weight, bias, running mean and variance), and the input channels of every layer that
consumes them (the next convs, or the input features of the first linear layer, where each
channel is a block of flattened positions). Which layers share channels comes from
:func:`landscape.prune.graph.channel_graph`; channels that several convs write (a ResNet stage's
residual path: its projection shortcut and the second conv of each block) are pruned together
with the same indices, ranked by the projection shortcut's filters (the paper's ResNet-34-C).
"""

from __future__ import annotations

import copy
from collections.abc import Mapping

import torch
from torch import nn

from landscape.errors import LandscapeError
from landscape.prune.graph import ChannelGraph, Group, channel_graph, is_conv
from landscape.prune.plans import Plan, kept, resolve_plan

STRATEGIES = ("independent", "greedy")


def filter_scores(conv: nn.Module, in_index: torch.Tensor | None = None) -> torch.Tensor:
    """Each filter's sum of absolute weights (float64), over the input channels ``in_index``
    (all of them when None)."""
    w = conv.weight.detach()
    if in_index is not None:
        w = w.index_select(1, in_index.to(w.device))
    return w.abs().double().flatten(1).sum(1).cpu()


def _top(scores: torch.Tensor, k: int) -> torch.Tensor:
    """Indices of the ``k`` largest scores (ties: the lower index), in increasing order."""
    order = torch.argsort(scores, descending=True, stable=True)
    return order[:k].sort().values


def _layout_index(layout: tuple[int, ...] | None, keep: Mapping[int, torch.Tensor], graph: ChannelGraph,
                  block: int = 1) -> torch.Tensor | None:
    """The kept positions of a layout (concatenated groups, each channel ``block`` features wide);
    None when nothing in it is pruned."""
    if layout is None or not any(g in keep for g in layout):
        return None
    parts, offset = [], 0
    for g in layout:
        width = graph.groups[g].width
        idx = keep[g] if g in keep else torch.arange(width)
        parts.append(idx + offset)
        offset += width
    idx = torch.cat(parts)
    if block > 1:
        idx = (idx[:, None] * block + torch.arange(block)).flatten()
    return idx


def _group_fractions(graph: ChannelGraph, model: nn.Module, plan: Plan) -> dict[int, int]:
    """Check ``plan`` against the model; the number of channels kept per pruned group."""
    modules = dict(model.named_modules())
    out: dict[int, int] = {}
    fractions: dict[int, tuple[str, float]] = {}
    for name, p in plan.items():
        if name not in graph.conv_out:
            if name in modules and is_conv(modules[name]):
                raise LandscapeError(f"cannot prune {name!r}: a depthwise conv has no filters of its own, it "
                                     "follows the channels of the layer before it")
            if name in modules and name:
                raise LandscapeError(f"{name!r} is a {type(modules[name]).__name__}, not a conv layer; a plan "
                                     "names conv layers")
            convs = graph.convs
            hint = ", ".join(convs[:4]) + (", ..." if len(convs) > 4 else "")
            raise LandscapeError(f"unknown layer {name!r} in the plan: the model has no such conv layer "
                                 f"(its convs: {hint})")
        g = graph.group_of(name)
        if g.index in fractions and fractions[g.index][1] != p:
            other = fractions[g.index][0]
            raise LandscapeError(f"{name!r} and {other!r} share their output channels (a residual path): "
                                 f"prune them with one fraction, not {p} and {fractions[g.index][1]}")
        fractions[g.index] = (name, p)
    for gi, (name, p) in fractions.items():
        g = graph.groups[gi]
        if p == 0:
            continue
        if g.blocked:
            raise LandscapeError(f"cannot prune {name!r}: its output channels {g.blocked}")
        missing = [q for q in g.producers if q not in plan]
        if missing:
            raise LandscapeError(
                f"cannot prune {name!r} alone: {len(g.producers)} layers write the same channels, which are "
                f"summed (a residual path); prune all of them with one fraction: {', '.join(g.producers)}")
        k = kept(g.width, p)
        if k < 1:
            raise LandscapeError(f"pruning {p:g} of the {g.width} filters of {name!r} removes every filter")
        if k < g.width:
            out[gi] = k
    return out


def _order(graph: ChannelGraph, groups) -> list[int]:
    """Groups in the forward order of their first producer."""
    pos = {name: i for i, name in enumerate(graph.convs)}
    return sorted(groups, key=lambda gi: pos[graph.groups[gi].producers[0]])


def select(model: nn.Module, plan: Mapping[str, float] | str, strategy: str = "independent",
           graph: ChannelGraph | None = None) -> dict[str, torch.Tensor]:
    """The filters each pruned conv keeps (sorted indices), ``{conv name: LongTensor}``.

    ``independent``: a filter's score is the sum of the absolute values of all its weights.
    ``greedy``: only over the kernels of input channels that survive the layers pruned before it
    (groups are decided in forward order). A group of convs writing the same channels is ranked by
    its projection shortcut's filters, or by the sum of its producers' scores where it has none.
    """
    if strategy not in STRATEGIES:
        raise LandscapeError(f"strategy must be one of {', '.join(STRATEGIES)}, got {strategy!r}")
    plan = resolve_plan(plan, model)
    graph = graph or channel_graph(model)
    keep = _keep(model, graph, plan, strategy)
    return {p: keep[gi] for gi in keep for p in graph.groups[gi].producers}


def _keep(model: nn.Module, graph: ChannelGraph, plan: Plan, strategy: str) -> dict[int, torch.Tensor]:
    widths = _group_fractions(graph, model, plan)
    modules = dict(model.named_modules())
    keep: dict[int, torch.Tensor] = {}
    for gi in _order(graph, widths):
        g: Group = graph.groups[gi]
        scores = torch.zeros(g.width, dtype=torch.float64)
        for name in g.leaders:
            in_idx = _layout_index(graph.conv_in[name], keep, graph) if strategy == "greedy" else None
            scores += filter_scores(modules[name], in_idx)
        keep[gi] = _top(scores, widths[gi])
    return keep


# ------------------------------------------------------------------------- module surgery


def _param(t: torch.Tensor | None, like: nn.Parameter | None) -> nn.Parameter | None:
    if t is None:
        return None
    return nn.Parameter(t.clone(), requires_grad=like.requires_grad if like is not None else True)


def _apply_(model: nn.Module, graph: ChannelGraph, keep: Mapping[int, torch.Tensor], reset: bool) -> list[str]:
    """Cut every module touched by ``keep`` down to the kept channels, in place; with ``reset``,
    re-initialize the cut modules (PyTorch's defaults). Returns the names of the changed modules."""
    modules = dict(model.named_modules())
    changed = []
    for name in graph.convs:
        m = modules[name]
        out_idx = keep.get(graph.conv_out[name])
        in_idx = _layout_index(graph.conv_in[name], keep, graph)
        if out_idx is None and in_idx is None:
            continue
        w = m.weight.detach()
        if out_idx is not None:
            w = w.index_select(0, out_idx.to(w.device))
            if m.bias is not None:
                m.bias = _param(m.bias.detach().index_select(0, out_idx.to(w.device)), m.bias)
            m.out_channels = w.shape[0]
        if in_idx is not None:
            w = w.index_select(1, in_idx.to(w.device))
            m.in_channels = w.shape[1] * m.groups
        m.weight = _param(w, m.weight)
        changed.append(name)
    for name, layout in graph.norms.items():
        idx = _layout_index(layout, keep, graph)
        if idx is None:
            continue
        m = modules[name]
        for attr in ("weight", "bias", "running_mean", "running_var"):
            t = getattr(m, attr, None)
            if t is None:
                continue
            cut = t.detach().index_select(0, idx.to(t.device))
            if isinstance(t, nn.Parameter):
                setattr(m, attr, _param(cut, t))
            else:
                setattr(m, attr, cut.clone())
        if is_conv(m):  # depthwise: one filter per channel
            m.in_channels = m.out_channels = m.groups = len(idx)
        else:
            m.num_features = len(idx)
        changed.append(name)
    for name, layout in graph.linears.items():
        m = modules[name]
        total = sum(graph.groups[g].width for g in layout)
        idx = _layout_index(layout, keep, graph, block=m.in_features // total)
        if idx is None:
            continue
        m.weight = _param(m.weight.detach().index_select(1, idx.to(m.weight.device)), m.weight)
        m.in_features = m.weight.shape[1]
        changed.append(name)
    if reset:
        for name in changed:
            modules[name].reset_parameters()
    return changed


def prune_filters(model: nn.Module, plan: Mapping[str, float] | str, strategy: str = "independent") -> nn.Module:
    """A new, physically smaller copy of ``model`` with the filters of ``plan`` removed.

    ``plan``: ``{conv name: fraction}``, a preset name (``"resnet56-B"``, checked against the
    model) or plan text (``"layer1.0.conv1=0.5,..."``). Each pruned conv keeps the
    ``floor(n * (1 - fraction))`` filters of largest L1 norm (see :func:`select` for
    ``strategy``). ``model`` itself is not modified.
    """
    if strategy not in STRATEGIES:
        raise LandscapeError(f"strategy must be one of {', '.join(STRATEGIES)}, got {strategy!r}")
    plan = resolve_plan(plan, model)
    graph = channel_graph(model)
    return _prune(model, graph, plan, strategy)


def _prune(model: nn.Module, graph: ChannelGraph, plan: Plan, strategy: str) -> nn.Module:
    keep = _keep(model, graph, plan, strategy)
    new = copy.deepcopy(model)
    _apply_(new, graph, keep, reset=False)
    return new


def plan_widths(model: nn.Module, plan: Mapping[str, float] | str) -> dict[str, int]:
    """The output width each conv pruned by ``plan`` is left with (``{conv name: filters}``, every
    producer of a pruned residual path included). Needs shapes only: works on the meta device."""
    plan = resolve_plan(plan, model)
    graph = channel_graph(model)
    widths = _group_fractions(graph, model, plan)
    return {p: widths[gi] for gi in _order(graph, widths) for p in graph.groups[gi].producers}


def conv_widths(model: nn.Module) -> dict[str, int]:
    """Every conv layer's number of filters (output channels)."""
    return {name: m.out_channels for name, m in model.named_modules() if is_conv(m)}


def resize_(model: nn.Module, widths: Mapping[str, int]) -> nn.Module:
    """Give the convs of ``model`` (a freshly built, full-width network) the output ``widths``
    ``{conv name: filters}`` and every consumer the matching inputs, in place; returns ``model``.

    The resized conv, BatchNorm and linear layers are re-initialized (PyTorch's defaults): ready
    to train from scratch or to receive a pruned checkpoint's ``load_state_dict``. Convs that
    write the same channels (a residual path) must all be given, with one width.
    """
    graph = channel_graph(model)
    by_group: dict[int, tuple[str, int]] = {}
    for name, w in widths.items():
        if name not in graph.conv_out:
            raise LandscapeError(f"the widths name {name!r}, which is not a conv layer of {type(model).__name__}")
        g = graph.group_of(name)
        try:
            w = int(w)
        except (TypeError, ValueError):
            raise LandscapeError(f"width of {name!r} is not an integer: {w!r}") from None
        if not 1 <= w <= g.width:
            raise LandscapeError(f"width {w} for {name!r} is outside 1..{g.width} (its full width)")
        if g.index in by_group and by_group[g.index][1] != w:
            raise LandscapeError(f"{name!r} and {by_group[g.index][0]!r} write the same channels but are "
                                 f"given widths {w} and {by_group[g.index][1]}")
        by_group[g.index] = (name, w)
    keep = {}
    for gi, (name, w) in by_group.items():
        g = graph.groups[gi]
        if w == g.width:
            continue
        if g.blocked:
            raise LandscapeError(f"cannot resize {name!r}: its output channels {g.blocked}")
        missing = [p for p in g.producers if p not in widths]
        if missing:
            raise LandscapeError(f"{name!r} writes the same channels as {', '.join(missing)}; the widths must "
                                 "give all of them")
        keep[gi] = torch.arange(w)
    _apply_(model, graph, keep, reset=True)
    return model


__all__ = ["STRATEGIES", "conv_widths", "filter_scores", "plan_widths", "prune_filters", "resize_", "select"]
