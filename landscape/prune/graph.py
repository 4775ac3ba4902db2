"""Which modules share which channels: a channel-dependency graph traced with ``torch.fx``.

Every tensor of the forward pass is given a *layout* that says what its dimension 1 holds:

* channels (``"c"``): the concatenation of one or more channel *groups* (one group per conv
  output; ``cat`` along dim 1 concatenates groups);
* flat features (``"f"``): channels flattened with their spatial positions (``flatten(1)``,
  ``view(n, -1)``), each channel a block of consecutive features;
* opaque: a tensor whose dimension 1 is not a pruned channel (a linear layer's output);
* nothing (a Python number: a size, a shape).

A conv's output starts a new group. Operations that act per channel (BatchNorm, activations,
pooling, dropout) keep the layout; an elementwise sum or product of two tensors merges their
groups, which must then be pruned with the same indices (the residual path of a ResNet stage:
its projection shortcut and the second conv of each of its blocks). Anything else that touches
a group (an unknown module or function, slicing, a reshape, the network output) marks the group
as one that cannot be pruned, with the reason, so that a plan naming it is refused clearly
instead of producing a wrong network.

``channel_graph(model, features=True)`` (permutation alignment, :mod:`landscape.connect.align`) also makes
a linear layer's output features a group, as a conv's output channels are (the hidden units of an
MLP), with flat features of one position per unit; a BatchNorm or LayerNorm over such features
follows them. Pruning traces without it: linear outputs stay opaque there.
"""

from __future__ import annotations

import operator
from dataclasses import dataclass, field

import torch
import torch.fx as fx
import torch.nn.functional as F
from torch import nn

from landscape.errors import LandscapeError, first_line

Layout = tuple  # ("c", (group, ...)) | ("f", (group, ...)) | OPAQUE | None
OPAQUE = ("o", ())

SHORTCUT_NAMES = ("shortcut", "downsample")

_PASS_MODULES = (
    nn.ReLU, nn.ReLU6, nn.LeakyReLU, nn.ELU, nn.SELU, nn.CELU, nn.GELU, nn.SiLU, nn.Mish,
    nn.Sigmoid, nn.Tanh, nn.Hardtanh, nn.Hardswish, nn.Hardsigmoid, nn.Softplus,
    nn.MaxPool1d, nn.MaxPool2d, nn.MaxPool3d, nn.AvgPool1d, nn.AvgPool2d, nn.AvgPool3d,
    nn.AdaptiveAvgPool1d, nn.AdaptiveAvgPool2d, nn.AdaptiveAvgPool3d,
    nn.AdaptiveMaxPool1d, nn.AdaptiveMaxPool2d, nn.AdaptiveMaxPool3d,
    nn.Dropout, nn.Dropout1d, nn.Dropout2d, nn.Dropout3d, nn.AlphaDropout, nn.Identity,
    nn.Upsample, nn.ZeroPad2d, nn.ConstantPad2d, nn.ReflectionPad2d, nn.ReplicationPad2d,
)
_PASS_FUNCTIONS = {
    F.relu, F.relu_, torch.relu, torch.relu_, F.relu6, F.leaky_relu, F.elu, F.selu, F.gelu,
    F.silu, F.mish, F.hardtanh, F.hardswish, F.hardsigmoid, F.softplus, torch.sigmoid,
    torch.tanh, F.max_pool1d, F.max_pool2d, F.max_pool3d, F.avg_pool1d, F.avg_pool2d,
    F.avg_pool3d, F.adaptive_avg_pool1d, F.adaptive_avg_pool2d, F.adaptive_avg_pool3d,
    F.adaptive_max_pool1d, F.adaptive_max_pool2d, F.adaptive_max_pool3d, F.dropout,
    F.dropout1d, F.dropout2d, F.dropout3d, F.interpolate, F.pad,
}
_PASS_METHODS = {"relu", "relu_", "sigmoid", "sigmoid_", "tanh", "tanh_", "contiguous", "clone",
                 "detach", "float", "double", "half", "to", "clamp", "clamp_", "clamp_min"}
_BINARY_FUNCTIONS = {
    operator.add, operator.iadd, operator.sub, operator.isub, operator.mul, operator.imul,
    operator.truediv, operator.itruediv, torch.add, torch.sub, torch.mul, torch.div,
}
_BINARY_METHODS = {"add", "add_", "sub", "sub_", "mul", "mul_", "div", "div_"}
_SIZE_METHODS = {"size", "dim", "numel"}
_REDUCTIONS = {"mean", "sum", "amax"}


def is_shortcut(name: str) -> bool:
    """A projection shortcut by the usual names: ``...shortcut...`` (CIFAR ResNets) or
    ``...downsample...`` (torchvision's layout)."""
    return any(part.startswith(SHORTCUT_NAMES) for part in name.split("."))


def is_conv(module: nn.Module) -> bool:
    """A (non-transposed) convolution: the layers whose filters can be pruned."""
    return isinstance(module, nn.modules.conv._ConvNd) and not module.transposed


def _is_depthwise(m: nn.Module) -> bool:
    return m.groups > 1 and m.groups == m.in_channels == m.out_channels


@dataclass
class Group:
    """Channels that are pruned together, with the same indices, in every producer."""

    index: int
    width: int
    producers: list[str] = field(default_factory=list)  # convs writing these channels, forward order
    blocked: str | None = None  # why these channels cannot be pruned (None: they can)

    @property
    def leaders(self) -> list[str]:
        """The producers whose filters rank the group's channels: the projection shortcut where
        there is one (Li et al., Sec. 4.4), else every producer (scores are summed)."""
        shortcuts = [p for p in self.producers if is_shortcut(p)]
        return shortcuts or list(self.producers)


@dataclass
class ChannelGraph:
    """The channel dependencies of a model, from :func:`channel_graph`.

    ``conv_out[name]`` is the group of a conv's output channels; ``conv_in[name]``,
    ``norms[name]`` (BatchNorm, depthwise convs: one parameter per channel) and
    ``linears[name]`` (flat features) are the groups their input channels are made of, in order
    (``None``: not a pruned layout). Traced with ``features=True``: ``linear_out[name]`` is the
    group of a linear layer's output features; ``layouts`` gives the layout of every node of
    ``traced`` (the fx graph module) by the node's name, its groups numbered as :attr:`groups`.
    """

    groups: list[Group]
    convs: list[str]
    conv_out: dict[str, int]
    conv_in: dict[str, tuple[int, ...] | None]
    norms: dict[str, tuple[int, ...]]
    linears: dict[str, tuple[int, ...]]
    kinds: dict[str, str]  # module name -> class name, for messages
    linear_out: dict[str, int] = field(default_factory=dict)
    layouts: dict[str, Layout] = field(default_factory=dict)
    traced: fx.GraphModule | None = None

    def group_of(self, conv: str) -> Group:
        return self.groups[self.conv_out[conv]]

    def prunable(self) -> list[str]:
        """Convs that can be pruned alone (their group has no other producer)."""
        return [c for c in self.convs
                if self.group_of(c).blocked is None and len(self.group_of(c).producers) == 1]


class _Builder:
    """Walks an fx graph once, assigning layouts and merging groups (union-find)."""

    def __init__(self, model: nn.Module, gm: fx.GraphModule, features: bool = False):
        self.model = model
        self.gm = gm
        self.features = features
        self.order: list[str] = []  # producers (convs, linears with `features`) in forward order
        self.linear_out: dict[str, int] = {}
        self.parent: list[int] = []
        self.width: list[int] = []
        self.producers: list[list[str]] = []
        self.reasons: list[str | None] = []
        self.layout: dict[fx.Node, Layout] = {}
        self.conv_out: dict[str, int] = {}
        self.conv_in: dict[str, tuple[int, ...] | None] = {}
        self.norms: dict[str, tuple[int, ...]] = {}
        self.linears: dict[str, tuple[int, ...]] = {}
        self.convs: list[str] = []
        calls: dict[str, int] = {}
        for node in gm.graph.nodes:
            if node.op == "call_module":
                calls[node.target] = calls.get(node.target, 0) + 1
        self.reused = {name for name, n in calls.items() if n > 1}

    # --- groups ----------------------------------------------------------------------------
    def new_group(self, width: int, producer: str | None = None, blocked: str | None = None) -> int:
        self.parent.append(len(self.parent))
        self.width.append(width)
        self.producers.append([producer] if producer else [])
        self.reasons.append(blocked)
        if producer:
            self.order.append(producer)
        return len(self.parent) - 1

    def find(self, g: int) -> int:
        while self.parent[g] != g:
            self.parent[g] = self.parent[self.parent[g]]
            g = self.parent[g]
        return g

    def union(self, a: int, b: int) -> None:
        a, b = self.find(a), self.find(b)
        if a == b:
            return
        a, b = min(a, b), max(a, b)
        self.parent[b] = a
        self.width[a] = self.width[a] or self.width[b]
        self.producers[a] += self.producers[b]
        self.reasons[a] = self.reasons[a] or self.reasons[b]

    def block(self, layout: Layout, reason: str) -> None:
        if layout is None or layout[0] == "o":
            return
        for g in layout[1]:
            r = self.find(g)
            if self.reasons[r] is None:
                self.reasons[r] = reason

    # --- helpers ---------------------------------------------------------------------------
    def inputs(self, node: fx.Node) -> list[Layout]:
        found: list[Layout] = []
        fx.node.map_arg((node.args, node.kwargs), lambda n: found.append(self.layout.get(n)))
        return found

    def unknown(self, node: fx.Node, what: str) -> Layout:
        ins = self.inputs(node)
        for lay in ins:
            self.block(lay, f"pass through {what}, which pruning cannot follow")
        if all(lay is None for lay in ins):
            return None
        return OPAQUE

    @staticmethod
    def arg(node: fx.Node, i: int, name: str, default=None):
        if len(node.args) > i:
            return node.args[i]
        return node.kwargs.get(name, default)

    def total(self, layout: Layout) -> int:
        """How many channels a layout's groups hold together."""
        return sum(self.width[self.find(g)] for g in layout[1])

    def merge(self, a: Layout, b: Layout, what: str) -> Layout:
        """Elementwise combination of two tensors: their groups become one, pairwise."""
        if a is None or b is None:
            return a if b is None else b
        if a[0] == "o" or b[0] == "o":
            other = b if a[0] == "o" else a
            self.block(other, f"are combined with a tensor of unknown layout by {what}")
            return OPAQUE if other[0] == "o" else other
        widths = ([self.width[self.find(g)] for g in a[1]], [self.width[self.find(g)] for g in b[1]])
        if a[0] != b[0] or widths[0] != widths[1]:
            self.block(a, f"are combined by {what} with channels of another layout")
            self.block(b, f"are combined by {what} with channels of another layout")
            return a
        for ga, gb in zip(a[1], b[1], strict=True):
            self.union(ga, gb)
        return a

    # --- the walk --------------------------------------------------------------------------
    def run(self) -> ChannelGraph:
        for node in self.gm.graph.nodes:
            self.layout[node] = self.visit(node)
        groups: dict[int, Group] = {}
        remap: dict[int, int] = {}
        for g in range(len(self.parent)):
            r = self.find(g)
            if r not in remap:
                remap[r] = len(remap)
                groups[r] = Group(remap[r], self.width[r], list(self.producers[r]), self.reasons[r])
        order = {name: i for i, name in enumerate(self.order)}
        for grp in groups.values():
            grp.producers.sort(key=order.__getitem__)

        def lay(gs):
            return None if gs is None else tuple(remap[self.find(g)] for g in gs)

        kinds = {name: type(m).__name__ for name, m in self.model.named_modules()}
        return ChannelGraph(
            groups=sorted(groups.values(), key=lambda g: g.index),
            convs=list(self.convs),
            conv_out={k: remap[self.find(g)] for k, g in self.conv_out.items()},
            conv_in={k: lay(v) for k, v in self.conv_in.items()},
            norms={k: lay(v) for k, v in self.norms.items()},
            linears={k: lay(v) for k, v in self.linears.items()},
            kinds=kinds,
            linear_out={k: remap[self.find(g)] for k, g in self.linear_out.items()},
            layouts={node.name: (lay_[0], lay(lay_[1])) if lay_ is not None and lay_[0] != "o" else lay_
                     for node, lay_ in self.layout.items()} if self.features else {},
            traced=self.gm if self.features else None,
        )

    def visit(self, node: fx.Node) -> Layout:
        if node.op == "placeholder":
            return ("c", (self.new_group(0, blocked="are the network's input"),))
        if node.op == "get_attr":
            return OPAQUE
        if node.op == "output":
            for lay in self.inputs(node):
                self.block(lay, "are the network's output")
            return None
        if node.op == "call_module":
            return self.visit_module(node)
        if node.op == "call_function":
            return self.visit_function(node)
        if node.op == "call_method":
            return self.visit_method(node)
        return self.unknown(node, f"{node.op} {node.target}")

    def visit_module(self, node: fx.Node) -> Layout:
        name = str(node.target)
        m = self.gm.get_submodule(name)
        first = node.args[0] if node.args else None
        x = self.layout.get(first) if isinstance(first, fx.Node) else None
        if name in self.reused and isinstance(m, nn.modules.conv._ConvNd | nn.modules.batchnorm._BatchNorm
                                              | nn.Linear):
            self.unknown(node, f"{name} (a module called more than once)")
            if is_conv(m) and name not in self.conv_out:
                self.convs.append(name)
                self.conv_out[name] = self.new_group(m.out_channels, name, f"come from {name}, which is called "
                                                     "more than once")
                self.conv_in[name] = None
            return ("c", (self.conv_out[name],)) if name in self.conv_out else OPAQUE
        if is_conv(m):
            if _is_depthwise(m) and x is not None and x[0] == "c":
                self.norms[name] = x[1]
                return x
            self.convs.append(name)
            if m.groups > 1:
                self.block(x, f"feed the grouped conv {name}")
                self.conv_out[name] = self.new_group(m.out_channels, name, f"come from the grouped conv {name}")
                self.conv_in[name] = None
            else:
                self.conv_out[name] = self.new_group(m.out_channels, name)
                self.conv_in[name] = x[1] if x is not None and x[0] == "c" else None
                if x is not None and x[0] == "f":
                    self.block(x, f"are flattened and then fed to the conv {name}")
            return ("c", (self.conv_out[name],))
        if isinstance(m, nn.modules.batchnorm._BatchNorm):
            if x is not None and x[0] == "c":
                self.norms[name] = x[1]
                return x
            if x is not None and x[0] == "f":
                if self.features and m.num_features == self.total(x):  # one feature per unit
                    self.norms[name] = x[1]
                    return x
                self.block(x, f"are flattened and then normalized by {name}")
            return OPAQUE
        if isinstance(m, nn.LayerNorm) and self.features and x is not None and x[0] == "f" \
                and tuple(m.normalized_shape) == (self.total(x),):
            if m.elementwise_affine:
                self.norms[name] = x[1]
            return x  # normalizes over the features: any order of them gives the same statistics
        if isinstance(m, nn.Linear):
            if x is not None and x[0] == "f":
                total = sum(self.width[self.find(g)] for g in x[1])
                if total and m.in_features % total == 0:
                    self.linears[name] = x[1]
                else:
                    self.block(x, f"are flattened into {name} whose {m.in_features} inputs are not "
                               "blocks of channels")
            elif x is not None and x[0] == "c":
                self.block(x, f"feed the linear layer {name} without being flattened")
            if self.features:
                self.linear_out[name] = self.new_group(m.out_features, name)
                return ("f", (self.linear_out[name],))
            return OPAQUE
        if isinstance(m, nn.Flatten):
            if x is not None and x[0] == "c" and m.start_dim == 1 and m.end_dim == -1:
                return ("f", x[1])
            return self.unknown(node, f"{name} ({type(m).__name__})")
        if isinstance(m, _PASS_MODULES) and len(node.args) == 1 and not node.kwargs:
            return x
        return self.unknown(node, f"{name} ({type(m).__name__})")

    def visit_function(self, node: fx.Node) -> Layout:
        fn = node.target
        first = node.args[0] if node.args else None
        x = self.layout.get(first) if isinstance(first, fx.Node) else None
        others = [lay for lay in self.inputs(node)[1:] if lay is not None]
        if fn in _PASS_FUNCTIONS and not others:
            return x
        if fn in _BINARY_FUNCTIONS and len(node.args) == 2:
            a, b = (self.layout.get(v) if isinstance(v, fx.Node) else None for v in node.args)
            return self.merge(a, b, getattr(fn, "__name__", str(fn)))
        if fn is torch.flatten:
            return self.flatten(node, x, self.arg(node, 1, "start_dim", 0), self.arg(node, 2, "end_dim", -1))
        if fn in (torch.mean, torch.sum, torch.amax):
            return self.reduction(node, x, fn.__name__)
        if fn is torch.cat:
            tensors = self.arg(node, 0, "tensors")
            dim = self.arg(node, 1, "dim", 0)
            lays = [self.layout.get(t) if isinstance(t, fx.Node) else None for t in tensors]
            if dim == 1 and lays and all(lay is not None and lay[0] == "c" for lay in lays):
                return ("c", tuple(g for lay in lays for g in lay[1]))
            return self.unknown(node, f"torch.cat along dim {dim}")
        if fn in (getattr, operator.getitem) and x is None:
            return None
        return self.unknown(node, getattr(fn, "__name__", str(fn)))

    def visit_method(self, node: fx.Node) -> Layout:
        method = str(node.target)
        first = node.args[0] if node.args else None
        x = self.layout.get(first) if isinstance(first, fx.Node) else None
        if method in _SIZE_METHODS:
            return None
        others = [lay for lay in self.inputs(node)[1:] if lay is not None]
        if method in _PASS_METHODS and not others:
            return x
        if method in _BINARY_METHODS and len(node.args) == 2:
            b = self.layout.get(node.args[1]) if isinstance(node.args[1], fx.Node) else None
            return self.merge(x, b, method)
        if method == "flatten":
            return self.flatten(node, x, self.arg(node, 1, "start_dim", 0), self.arg(node, 2, "end_dim", -1))
        if method in _REDUCTIONS:
            return self.reduction(node, x, f".{method}()")
        if method in ("view", "reshape") and len(node.args) == 3 and node.args[2] == -1 and x is not None \
                and x[0] == "c":
            return ("f", x[1])  # x.view(x.size(0), -1)
        return self.unknown(node, f".{method}()")

    def reduction(self, node: fx.Node, x: Layout, what: str) -> Layout:
        """``x.mean((2, 3))`` and the like: over spatial dimensions only, channels stay in dim 1
        (flat features, one per channel, when the reduced dimensions are dropped)."""
        dims = self.arg(node, 1, "dim")
        dims = (dims,) if isinstance(dims, int) else dims
        keepdim = self.arg(node, 2, "keepdim", False)
        if x is not None and x[0] == "c" and isinstance(dims, tuple | list) and dims \
                and all(isinstance(d, int) and d >= 2 for d in dims) and isinstance(keepdim, bool):
            return x if keepdim else ("f", x[1])
        return self.unknown(node, f"{what} over dims {dims}")

    def flatten(self, node: fx.Node, x: Layout, start, end) -> Layout:
        if x is not None and x[0] == "c" and start == 1 and end == -1:
            return ("f", x[1])
        if x is not None and x[0] == "f" and start in (0, 1) and end == -1:
            return x if start == 1 else self.unknown(node, "flatten(0)")
        return self.unknown(node, f"flatten({start}, {end})")


class _Tracer(fx.Tracer):
    """fx's tracer, remembering the innermost module whose forward pass it could not trace."""

    failed_in: str | None = None

    def call_module(self, m, forward, args, kwargs):
        try:
            return super().call_module(m, forward, args, kwargs)
        except Exception:
            if self.failed_in is None:
                self.failed_in = self.path_of_module(m)
            raise


def channel_graph(model: nn.Module, features: bool = False) -> ChannelGraph:
    """The channel-dependency graph of ``model`` (traced symbolically: no tensor is computed);
    ``features``: linear layers' output features are groups too (see the module's docstring).

    A model whose forward pass ``torch.fx`` cannot trace (data-dependent control flow) is a
    :class:`LandscapeError` naming the layer that stops it.
    """
    tracer = _Tracer()
    try:
        graph = tracer.trace(model)
        gm = fx.GraphModule(tracer.root, graph, type(model).__name__)
    except Exception as exc:  # fx raises many types (TraceError, TypeError, NotImplementedError)
        where = tracer.failed_in
        layer = (f"the layer {where!r} ({type(model.get_submodule(where)).__name__}) stops it" if where
                 else f"the forward pass of {type(model).__name__} itself stops it")
        raise LandscapeError(f"cannot trace {type(model).__name__} with torch.fx to find which layers share "
                             f"channels: {layer} ({first_line(exc)})") from None
    return _Builder(model, gm, features).run()


__all__ = ["ChannelGraph", "Group", "channel_graph", "is_conv", "is_shortcut"]
