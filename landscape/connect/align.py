"""Permutation alignment of two networks (Git Re-Basin: Ainsworth et al., ICLR'23; Entezari et al.,
ICLR'22): the hidden units of one network permuted to match the other's, its function unchanged.

Which units move together comes from the channel-coupling graph of :mod:`landscape.prune.graph`
(traced with ``features=True``, so that a linear layer's outputs are units too): a *permutation
group* is a set of coupled channels, and every tensor whose channels a removal of the group would
touch is permuted with it: the producers' weights and biases along their outputs, the consumers'
weights along their inputs (a flattened conv's channels as blocks of positions), BatchNorm and
LayerNorm weights, biases and running statistics, every conv writing into a residual sum, every
part of a concatenation. Groups that the graph cannot follow (the network's input and output, a
reused module, an unknown operation) stay in place.

* **Weight matching**: coordinate descent over the groups, in a random order each round; each step
  maximizes ``sum <W_a, P W_b>`` over one group's permutation (the other groups' as they stand),
  a linear assignment solved by :func:`scipy.optimize.linear_sum_assignment`, until a round changes
  no permutation (or ``max_rounds``: both reported).
* **Activation matching**: one assignment per group, maximizing the summed correlation of each
  unit of ``a`` with each unit of ``b`` over every point of the forward pass that carries the
  group's channels, on data.
"""

from __future__ import annotations

import copy
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

import numpy as np
import torch
import torch.fx as fx
from scipy.optimize import linear_sum_assignment
from torch import nn

from landscape.connect.curve import check_ends
from landscape.data.batches import as_batches, inputs_of
from landscape.errors import LandscapeError, check_choice, is_int
from landscape.evaluation.evaluator import DEFAULT_BATCH_SIZE
from landscape.evaluation.options import EvalOptions
from landscape.prune.graph import ChannelGraph, channel_graph
from landscape.runtime.parallel import on_root, world

METHODS = ("weights", "activations")
MAX_ROUNDS = 100
_NORM_TENSORS = ("weight", "bias", "running_mean", "running_var")
_NOT_PER_CHANNEL = ("num_batches_tracked",)


@dataclass(frozen=True)
class Axis:
    """One dimension of one tensor that permutation groups reorder: ``groups`` are the channel
    groups laid side by side along ``dim`` (a concatenation), each channel ``block`` entries long."""

    tensor: str
    dim: int
    groups: tuple[int, ...]
    block: int = 1


@dataclass(frozen=True)
class PermutationSpec:
    """The permutation groups of an architecture: ``names[g]`` (the group's first producer, in
    forward order), ``widths[g]``, ``producers[g]`` for every group ``g`` that can be permuted;
    ``axes``: every tensor dimension they reorder; ``fixed``: the groups left in place, by name,
    with the reason; ``graph``: the channel graph they came from."""

    names: dict[int, str]
    widths: dict[int, int]
    producers: dict[int, tuple[str, ...]]
    axes: tuple[Axis, ...]
    fixed: dict[str, str]
    graph: ChannelGraph

    def index(self, axis: Axis, perms: Mapping[int, torch.Tensor], skip: int | None = None) -> torch.Tensor:
        """The order of ``axis``'s entries under ``perms`` (the part ``skip``, an index into
        ``axis.groups``, left as it is)."""
        parts, offset = [], 0
        for k, g in enumerate(axis.groups):
            width = self.graph.groups[g].width
            idx = perms[g] if g in perms and k != skip else torch.arange(width)
            parts.append(idx + offset)
            offset += width
        idx = torch.cat(parts)
        if axis.block > 1:
            idx = (idx[:, None] * axis.block + torch.arange(axis.block)).flatten()
        return idx

    def permute_state(self, state: Mapping[str, torch.Tensor], perms: Mapping[int, torch.Tensor]
                      ) -> dict[str, torch.Tensor]:
        """``state`` with every axis reordered by ``perms`` (group index -> the unit of ``state``
        that goes to each position); tensors no group touches are the same objects."""
        out = dict(state)
        for axis in self.axes:
            if any(g in perms for g in axis.groups):
                t = out[axis.tensor]
                out[axis.tensor] = t.index_select(axis.dim, self.index(axis, perms).to(t.device))
        return out


def _fixed_reason(reason: str | None) -> str:
    return f"its channels {reason}" if reason else "it is not permuted"


def permutation_spec(model: nn.Module) -> PermutationSpec:
    """The permutation groups of ``model`` and the tensor dimensions each reorders (see the module's
    docstring). A group whose coupled tensors disagree in size, which no working network has, is a
    :class:`LandscapeError` naming them; so is a network that ``torch.fx`` cannot trace."""
    graph = channel_graph(model, features=True)
    modules = dict(model.named_modules())
    state = model.state_dict()
    free = {g.index for g in graph.groups if g.blocked is None and g.producers}
    fixed = {g.producers[0]: _fixed_reason(g.blocked) for g in graph.groups if g.producers and g.index not in free}
    axes: list[tuple[str, Axis]] = []  # (module, axis)

    def add(module: str, attr: str, dim: int, layout: Sequence[int] | None, block: int = 1) -> None:
        key = f"{module}.{attr}"
        if layout and key in state:
            axes.append((module, Axis(key, dim, tuple(layout), block)))

    for name in graph.convs:
        add(name, "weight", 0, (graph.conv_out[name],))
        add(name, "bias", 0, (graph.conv_out[name],))
        add(name, "weight", 1, graph.conv_in.get(name))
    for name, g in graph.linear_out.items():
        add(name, "weight", 0, (g,))
        add(name, "bias", 0, (g,))
    for name, layout in graph.norms.items():
        for attr in _NORM_TENSORS:
            add(name, attr, 0, layout)
    for name, layout in graph.linears.items():
        total = sum(graph.groups[g].width for g in layout)
        add(name, "weight", 1, layout, modules[name].in_features // total)
    # A module with tensors of its own that no axis above covers (weight normalization, a
    # parametrization) cannot have its channels reordered here: its groups stay in place.
    for module in {module for module, _ in axes}:
        unknown = [k for k in modules[module].state_dict() if k not in _NORM_TENSORS and k not in _NOT_PER_CHANNEL]
        if unknown:
            for _, axis in axes:
                if axis.tensor.startswith(module + "."):
                    for g in set(axis.groups) & free:
                        free.discard(g)
                        fixed[graph.groups[g].producers[0]] = (f"{module!r} holds {unknown[0]!r}, which alignment "
                                                              "cannot reorder")
    kept = [axis for _, axis in axes if set(axis.groups) & free]
    for axis in kept:
        size = sum(graph.groups[g].width for g in axis.groups) * axis.block
        if state[axis.tensor].shape[axis.dim] != size:
            g = next(g for g in axis.groups if g in free)
            group = graph.groups[g]
            raise LandscapeError(
                f"the permutation group of {group.producers[0]!r} couples tensors that disagree in size: "
                f"{axis.tensor} has {state[axis.tensor].shape[axis.dim]} entries along dim {axis.dim}, the "
                f"channels coupled there number {size} ({', '.join(group.producers[:3])} write {group.width})")
    return PermutationSpec(
        names={g: graph.groups[g].producers[0] for g in sorted(free)},
        widths={g: graph.groups[g].width for g in sorted(free)},
        producers={g: tuple(graph.groups[g].producers) for g in sorted(free)},
        axes=tuple(kept), fixed=fixed, graph=graph)


# --------------------------------------------------------------------------- weight matching


def _float64(state: Mapping[str, torch.Tensor], names) -> dict[str, torch.Tensor]:
    return {k: state[k].detach().to("cpu", torch.float64) for k in names}


def weight_matching(spec: PermutationSpec, a: Mapping[str, torch.Tensor], b: Mapping[str, torch.Tensor], *,
                    params: Sequence[str] | None = None, max_rounds: int = MAX_ROUNDS, seed: int = 0
                    ) -> tuple[dict[int, torch.Tensor], int, bool]:
    """Ainsworth et al.'s weight matching: the permutations of ``b``'s groups that maximize
    ``sum <a, P b>`` over the tensors ``params`` (default: every tensor an axis reorders), by
    coordinate descent. Returns the permutations (group -> indices into ``b``), the rounds run and
    whether the last round changed nothing."""
    by_tensor: dict[str, list[Axis]] = {}
    for axis in spec.axes:
        if params is None or axis.tensor in params:
            by_tensor.setdefault(axis.tensor, []).append(axis)
    ta, tb = _float64(a, by_tensor), _float64(b, by_tensor)
    perms = {g: torch.arange(w) for g, w in spec.widths.items()}
    rng = np.random.default_rng(seed)
    groups = sorted(spec.widths)
    rounds, converged = 0, False
    while rounds < max_rounds and not converged:
        rounds += 1
        converged = True
        for g in rng.permutation(groups):
            g = int(g)
            cost = torch.zeros(spec.widths[g], spec.widths[g], dtype=torch.float64)
            for name, axes in by_tensor.items():
                for i, axis in enumerate(axes):
                    offset = 0
                    for gg in axis.groups:
                        width = spec.graph.groups[gg].width
                        if gg == g:
                            other = tb[name]
                            for j, ax in enumerate(axes):
                                if j != i:
                                    other = other.index_select(ax.dim, spec.index(ax, perms))
                            start, length = offset * axis.block, width * axis.block
                            pa = ta[name].narrow(axis.dim, start, length).movedim(axis.dim, 0).reshape(width, -1)
                            pb = other.narrow(axis.dim, start, length).movedim(axis.dim, 0).reshape(width, -1)
                            cost += pa @ pb.T
                        offset += width
            c = cost.numpy()
            _, cols = linear_sum_assignment(c, maximize=True)
            rows = np.arange(len(cols))
            old, new = c[rows, perms[g].numpy()].sum(), c[rows, cols].sum()
            if new > old + 1e-12 * max(1.0, abs(old)):
                perms[g] = torch.from_numpy(cols).long()
                converged = False
    return perms, rounds, converged


# ----------------------------------------------------------------------- activation matching


class _Correlation:
    """Running sums for the correlation of each unit of a with each unit of b."""

    def __init__(self, width: int):
        self.n = 0
        self.sa = torch.zeros(width, dtype=torch.float64)
        self.sb = torch.zeros(width, dtype=torch.float64)
        self.saa = torch.zeros(width, dtype=torch.float64)
        self.sbb = torch.zeros(width, dtype=torch.float64)
        self.sab = torch.zeros(width, width, dtype=torch.float64)

    def add_(self, xa: torch.Tensor, xb: torch.Tensor) -> None:
        xa, xb = xa.to("cpu", torch.float64), xb.to("cpu", torch.float64)
        self.n += xa.shape[0]
        self.sa += xa.sum(0)
        self.sb += xb.sum(0)
        self.saa += (xa * xa).sum(0)
        self.sbb += (xb * xb).sum(0)
        self.sab += xa.T @ xb

    def matrix(self) -> torch.Tensor:
        ma, mb = self.sa / self.n, self.sb / self.n
        cov = self.sab / self.n - ma[:, None] * mb[None, :]
        sa = (self.saa / self.n - ma * ma).clamp_min(0).sqrt()
        sb = (self.sbb / self.n - mb * mb).clamp_min(0).sqrt()
        corr = cov / (sa[:, None] * sb[None, :] + 1e-12)
        return torch.nan_to_num(corr)


def _units(t: torch.Tensor, kind: str, width: int) -> torch.Tensor:
    """A tensor whose dim 1 holds channels (``kind`` "c") or flat features of ``width`` channels
    ("f") as (samples, channels): every position of a channel is a sample of it."""
    if kind == "f":
        t = t.reshape(t.shape[0], width, -1)
    return t.movedim(1, -1).reshape(-1, width)


def activation_matching(spec: PermutationSpec, model_a: nn.Module, model_b: nn.Module, batches,
                        num_batches: int | None = None) -> dict[int, torch.Tensor]:
    """The permutations of ``b``'s groups that maximize the summed correlation of a's and b's
    units over every node of the forward pass that carries a group (both networks in eval mode,
    run side by side node by node on ``num_batches`` of ``batches``; default all)."""
    graph = spec.graph.traced
    placeholders = [n for n in graph.graph.nodes if n.op == "placeholder"]
    if len(placeholders) != 1:
        raise LandscapeError(f"activation matching runs networks of one input; {type(model_a).__name__} takes "
                             f"{len(placeholders)}: use method='weights'")
    points: dict[str, list[tuple[int, int, str]]] = {}  # node -> (group, first channel, layout kind)
    for node_name, lay in spec.graph.layouts.items():
        if lay is None or lay[0] not in ("c", "f"):
            continue
        offset = 0
        for g in lay[1]:
            if g in spec.widths:
                points.setdefault(node_name, []).append((g, offset, lay[0]))
            offset += spec.graph.groups[g].width
    stats = {(node, g, off): _Correlation(spec.widths[g]) for node, entries in points.items()
             for g, off, _ in entries}
    runners = []
    for model in (model_a, model_b):
        gm = fx.GraphModule(model, graph.graph)
        runners.append(fx.Interpreter(gm, garbage_collect_values=True))
    last_use = runners[0].user_to_last_uses
    modes = [m.training for m in (model_a, model_b)]
    model_a.eval()
    model_b.eval()
    try:
        with torch.no_grad():
            for k, (batch, _) in enumerate(batches):
                if num_batches is not None and k >= num_batches:
                    break
                x = inputs_of(batch)
                envs = []
                for r in runners:
                    r.env = {}
                    r.args_iter = iter([x])
                    envs.append(r.env)
                for node in graph.graph.nodes:
                    outs = []
                    for r in runners:
                        r.env[node] = r.run_node(node)
                        outs.append(r.env[node])
                    for g, off, kind in points.get(node.name, ()):
                        total = sum(spec.graph.groups[h].width for h in spec.graph.layouts[node.name][1])
                        ua, ub = (_units(o, kind, total)[:, off:off + spec.widths[g]] for o in outs)
                        stats[(node.name, g, off)].add_(ua, ub)
                    for r in runners:
                        for dead in last_use.get(node, ()):
                            del r.env[dead]
    finally:
        model_a.train(modes[0])
        model_b.train(modes[1])
    perms = {}
    for g, width in spec.widths.items():
        cost = torch.zeros(width, width, dtype=torch.float64)
        for (_, gg, _), s in stats.items():
            if gg == g and s.n:
                cost += s.matrix()
        _, cols = linear_sum_assignment(cost.numpy(), maximize=True)
        perms[g] = torch.from_numpy(cols).long()
    return perms


# ------------------------------------------------------------------------------- the result


@dataclass(frozen=True)
class Alignment:
    """``model``: the aligned copy of b (the same function, its units reordered to match a);
    ``permutation``: by group name (its first layer), the unit of b at each position of the
    aligned network; ``groups``: each group's layers (the convs and linears writing its
    channels); ``fixed``: the groups left in place, with the reason. ``rounds`` and ``converged``:
    weight matching's coordinate descent (activation matching: 1, True). ``distance``: the L2
    distance between a's and b's parameters before and after. ``seconds``: what it cost.
    ``aligned, permutation = align(a, b)`` unpacks the first two."""

    model: nn.Module
    permutation: dict[str, torch.Tensor]
    groups: dict[str, tuple[str, ...]]
    method: str
    rounds: int
    converged: bool
    distance: tuple[float, float]
    seconds: float
    fixed: dict[str, str] = field(default_factory=dict)
    max_rounds: int = MAX_ROUNDS
    seed: int = 0

    def __iter__(self):
        yield self.model
        yield self.permutation

    def record(self) -> dict:
        """What an aligned checkpoint records (plain values, ``weights_only`` loadable)."""
        return {"method": self.method, "permutation": {k: v.tolist() for k, v in self.permutation.items()},
                "groups": {k: list(v) for k, v in self.groups.items()}, "fixed": dict(self.fixed),
                "rounds": self.rounds, "converged": self.converged, "max_rounds": self.max_rounds,
                "seed": self.seed, "distance_before": self.distance[0], "distance_after": self.distance[1],
                "seconds": self.seconds}


def _distance(model_a: nn.Module, state_b: Mapping[str, torch.Tensor]) -> float:
    total = 0.0
    for name, p in model_a.named_parameters():
        total += float((p.detach().double().cpu() - state_b[name].detach().double().cpu()).pow(2).sum())
    return total ** 0.5


def _by_name(spec: PermutationSpec, perms: Mapping[int, torch.Tensor]) -> dict[str, torch.Tensor]:
    return {spec.names[g]: perms[g] for g in sorted(perms)}


def _by_group(spec: PermutationSpec, permutation: Mapping[str, Sequence[int] | torch.Tensor]
              ) -> dict[int, torch.Tensor]:
    index = {name: g for g, name in spec.names.items()}
    unknown = [k for k in permutation if k not in index]
    if unknown:
        raise LandscapeError(f"the permutation names {unknown[0]!r}, which is no permutation group of this network "
                             f"(its groups: {', '.join(list(index)[:4])}{', ...' if len(index) > 4 else ''})")
    out = {}
    for name, values in permutation.items():
        g = index[name]
        p = torch.as_tensor(values, dtype=torch.long).flatten()
        if p.numel() != spec.widths[g] or not torch.equal(p.sort().values, torch.arange(spec.widths[g])):
            raise LandscapeError(f"the permutation of {name!r} is not a permutation of its {spec.widths[g]} units")
        out[g] = p
    return out


def permute(model: nn.Module, permutation: Mapping[str, Sequence[int] | torch.Tensor]) -> nn.Module:
    """A copy of ``model`` with its units reordered by ``permutation`` (as :class:`Alignment`
    gives it, by group name): the same function."""
    spec = permutation_spec(model)
    out = copy.deepcopy(model)
    out.load_state_dict(spec.permute_state(model.state_dict(), _by_group(spec, permutation)))
    return out


def _check_same_function(model_b: nn.Module, aligned: nn.Module, batch) -> None:
    """The aligned copy computes what b does, on one batch (to float precision)."""
    with torch.no_grad():
        modes = (model_b.training, aligned.training)
        model_b.eval()
        aligned.eval()
        try:
            want, got = model_b(inputs_of(batch)), aligned(inputs_of(batch))
        finally:
            model_b.train(modes[0])
            aligned.train(modes[1])
    if not (torch.is_tensor(want) and torch.is_tensor(got)):
        return
    scale = float(want.detach().abs().max()) if want.numel() else 0.0
    diff = float((want - got).detach().abs().max()) if want.numel() else 0.0
    if not diff <= 1e-4 * max(1.0, scale):
        raise LandscapeError(f"the permuted network does not compute what {type(model_b).__name__} does (outputs "
                             f"differ by {diff:.3g}): a layer the channel graph does not follow; nothing is written")


def align(model_a: nn.Module, model_b: nn.Module, method: str = "weights", data=None, *,
          evaluation: EvalOptions | None = None, num_batches: int | None = None, max_rounds: int = MAX_ROUNDS,
          seed: int = 0, comm=None) -> Alignment:
    """``model_b``'s units permuted to match ``model_a``'s: an :class:`Alignment` (``aligned,
    permutation = align(a, b)`` unpacks the aligned copy and its permutation; the models are not
    changed).

    ``method``: ``"weights"`` (weight matching, no data needed) or ``"activations"`` (activation
    matching on ``num_batches`` batches of ``data``, default all, on the networks' device). With
    ``data``, one batch of it also checks that the aligned copy computes what b does.
    ``evaluation``: the batch size (:class:`landscape.EvalOptions`). ``max_rounds``: the cap on weight
    matching's rounds; ``seed``: the order of its groups. Under MPI every rank calls it; rank 0
    computes the permutation and every rank gets it (``comm``: default the world).
    """
    start = time.perf_counter()
    check_choice("method", method, METHODS)
    if not is_int(max_rounds) or max_rounds < 1:
        raise LandscapeError(f"`max_rounds` must be a positive integer, got {max_rounds!r}")
    if not is_int(seed) or seed < 0:
        raise LandscapeError(f"`seed` must be a non-negative integer, got {seed!r}")
    if num_batches is not None and (not is_int(num_batches) or num_batches < 1):
        raise LandscapeError(f"`num_batches` must be a positive integer or None, got {num_batches!r}")
    if method == "activations" and data is None:
        raise LandscapeError("activation matching needs data: give `data`, or use method='weights'")
    if type(model_a) is not type(model_b):
        raise LandscapeError(f"the two networks are not of one architecture: {type(model_a).__name__} and "
                             f"{type(model_b).__name__}")
    state_a, state_b = model_a.state_dict(), model_b.state_dict()
    check_ends(state_a, state_b, "the two networks")
    evaluation = evaluation if evaluation is not None else EvalOptions()
    if not isinstance(evaluation, EvalOptions):
        raise LandscapeError(f"`evaluation` must be a landscape.EvalOptions, got {type(evaluation).__name__}")
    comm = comm or world()
    spec = permutation_spec(model_a)
    if not spec.widths:
        raise LandscapeError(f"nothing to align: no units of {type(model_a).__name__} can be permuted ("
                             + ("; ".join(f"{k}: {v}" for k, v in list(spec.fixed.items())[:3]) or "no layers")
                             + ")")
    batches = None
    if data is not None:  # on the networks' device
        device = next((p.device for p in model_b.parameters()), torch.device("cpu"))
        batches = as_batches(data, device, evaluation.batch_size or DEFAULT_BATCH_SIZE)

    def compute() -> tuple[dict[int, torch.Tensor], int, bool]:
        if method == "weights":
            params = {n for n, _ in model_a.named_parameters()}
            return weight_matching(spec, state_a, state_b, params=params, max_rounds=max_rounds, seed=seed)
        return activation_matching(spec, model_a, model_b, batches, num_batches), 1, True

    perms, rounds, converged = on_root(comm, compute)
    aligned = copy.deepcopy(model_b)
    aligned.load_state_dict(spec.permute_state(state_b, perms))
    if batches is not None:
        _check_same_function(model_b, aligned, next(iter(batches))[0])
    distance = (_distance(model_a, state_b), _distance(model_a, aligned.state_dict()))
    return Alignment(model=aligned, permutation=_by_name(spec, perms),
                     groups={spec.names[g]: spec.producers[g] for g in spec.names}, method=method, rounds=rounds,
                     converged=converged, distance=distance,
                     seconds=time.perf_counter() - start, fixed=dict(spec.fixed), max_rounds=max_rounds, seed=seed)


__all__ = ["METHODS", "Alignment", "Axis", "PermutationSpec", "activation_matching", "align", "permutation_spec",
           "permute", "weight_matching"]
