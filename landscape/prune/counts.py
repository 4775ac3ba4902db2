"""FLOPs and parameters under the filter-pruning paper's convention, from shapes alone.

Li et al. (ICLR'17) count the multiply-adds of the convolutional and linear layers and their
weights, not biases or BatchNorm; 1x1 projection shortcuts are left out (``shortcuts=True``
counts them). No arithmetic is done: the model's ``torch.fx`` graph is walked with shapes only,
each known operation's output shape following from its formula (convolution, pooling, flatten...)
and any other operation run on ``meta`` tensors. A model fx cannot trace is run whole on a
``meta``-device copy with forward hooks instead (same numbers, slower: PyTorch's meta kernels
of BatchNorm and activations are Python code, and their first use costs about a second).
"""

from __future__ import annotations

import copy
import math
import operator
from collections.abc import Sequence
from dataclasses import dataclass

import torch
import torch.fx as fx
import torch.nn.functional as F
from torch import nn

from landscape.errors import LandscapeError, first_line
from landscape.prune.graph import _BINARY_FUNCTIONS, _BINARY_METHODS, _PASS_FUNCTIONS, _PASS_MODULES, is_shortcut


@dataclass(frozen=True)
class LayerCount:
    """One conv or linear layer: multiply-adds for one input sample (all its calls) and weights."""

    name: str
    kind: str
    flops: int
    params: int
    output_shape: tuple[int, ...]  # of one sample, at the last call


def meta_copy(model: nn.Module) -> nn.Module:
    """A copy of ``model`` whose parameters and buffers live on the ``meta`` device (shapes only;
    the model's own tensors are neither copied nor touched)."""
    memo: dict[int, object] = {}
    for t in list(model.parameters()) + list(model.buffers()):
        meta = torch.empty(t.shape, dtype=t.dtype, device="meta")
        memo[id(t)] = nn.Parameter(meta, requires_grad=t.requires_grad) if isinstance(t, nn.Parameter) else meta
    return copy.deepcopy(model, memo)


def _check_shape(input_shape: Sequence[int]) -> tuple[int, ...]:
    try:
        shape = tuple(int(d) for d in input_shape)
    except (TypeError, ValueError):
        raise LandscapeError(f"input shape must be a sequence of integers, got {input_shape!r}") from None
    if not shape or min(shape) < 1:
        raise LandscapeError(f"input shape must be positive integers (C, H, W), got {input_shape!r}")
    return shape


def _macs(m: nn.Module, in_shape: Sequence[int], out_shape: Sequence[int]) -> int:
    if isinstance(m, nn.Linear):
        return math.prod(out_shape) // m.out_features * m.in_features * m.out_features
    if m.transposed:
        return math.prod(in_shape) * (m.weight.numel() // m.in_channels)
    return math.prod(out_shape) * (m.weight.numel() // m.out_channels)


# ------------------------------------------------------------------------- shape formulas


def _tuple(v, n: int) -> tuple:
    return tuple(v) if isinstance(v, list | tuple) else (v,) * n


def _pool_len(size: int, k: int, s: int, p: int, d: int, ceil: bool) -> int:
    """PyTorch's pooling_output_shape."""
    span = size + 2 * p - d * (k - 1) - 1 + (s - 1 if ceil else 0)
    out = span // s + 1
    if ceil and (out - 1) * s >= size + p:
        out -= 1
    return out


def _conv_shape(m: nn.modules.conv._ConvNd, shape: tuple[int, ...]) -> tuple[int, ...] | None:
    n = len(m.kernel_size)
    spatial = shape[-n:]
    if m.transposed:
        out = [(i - 1) * s - 2 * p + d * (k - 1) + op + 1 for i, k, s, p, d, op in
               zip(spatial, m.kernel_size, m.stride, m.padding, m.dilation, m.output_padding, strict=True)]
    elif isinstance(m.padding, str):
        if m.padding == "valid":
            out = [_pool_len(i, k, s, 0, d, False) for i, k, s, d in
                   zip(spatial, m.kernel_size, m.stride, m.dilation, strict=True)]
        else:  # "same" (stride 1 only)
            out = list(spatial)
    else:
        out = [_pool_len(i, k, s, p, d, False) for i, k, s, p, d in
               zip(spatial, m.kernel_size, m.stride, m.padding, m.dilation, strict=True)]
    return (*shape[:-n - 1], m.out_channels, *out)


_POOL_DIMS = {
    F.max_pool1d: 1, F.max_pool2d: 2, F.max_pool3d: 3, F.avg_pool1d: 1, F.avg_pool2d: 2, F.avg_pool3d: 3,
}
_ADAPTIVE_DIMS = {
    F.adaptive_avg_pool1d: 1, F.adaptive_avg_pool2d: 2, F.adaptive_avg_pool3d: 3,
    F.adaptive_max_pool1d: 1, F.adaptive_max_pool2d: 2, F.adaptive_max_pool3d: 3,
}
_POOL_MODULES = {
    nn.MaxPool1d: F.max_pool1d, nn.MaxPool2d: F.max_pool2d, nn.MaxPool3d: F.max_pool3d,
    nn.AvgPool1d: F.avg_pool1d, nn.AvgPool2d: F.avg_pool2d, nn.AvgPool3d: F.avg_pool3d,
}
_ADAPTIVE_MODULES = {
    nn.AdaptiveAvgPool1d: F.adaptive_avg_pool1d, nn.AdaptiveAvgPool2d: F.adaptive_avg_pool2d,
    nn.AdaptiveAvgPool3d: F.adaptive_avg_pool3d, nn.AdaptiveMaxPool1d: F.adaptive_max_pool1d,
    nn.AdaptiveMaxPool2d: F.adaptive_max_pool2d, nn.AdaptiveMaxPool3d: F.adaptive_max_pool3d,
}
_MAX_POOLS = (F.max_pool1d, F.max_pool2d, F.max_pool3d)


def _pool_shape(fn, shape: tuple[int, ...], kernel_size, stride=None, padding=0, dilation=1,
                ceil_mode=False) -> tuple[int, ...]:
    n = _POOL_DIMS[fn]
    k = _tuple(kernel_size, n)
    s = _tuple(stride if stride not in (None, [], ()) else kernel_size, n)
    p, d = _tuple(padding, n), _tuple(dilation, n)
    out = [_pool_len(i, *a, bool(ceil_mode)) for i, *a in zip(shape[-n:], k, s, p, d, strict=True)]
    return (*shape[:-n], *out)


def _adaptive_shape(fn, shape: tuple[int, ...], output_size) -> tuple[int, ...]:
    n = _ADAPTIVE_DIMS[fn]
    size = _tuple(output_size, n)
    return (*shape[:-n], *(i if o is None else o for i, o in zip(shape[-n:], size, strict=True)))


def _broadcast(a: tuple[int, ...], b: tuple[int, ...]) -> tuple[int, ...]:
    n = max(len(a), len(b))
    a, b = (1,) * (n - len(a)) + a, (1,) * (n - len(b)) + b
    out = []
    for x, y in zip(a, b, strict=True):
        if x != y and 1 not in (x, y):
            raise RuntimeError(f"shapes {a} and {b} do not broadcast")
        out.append(max(x, y) if 1 in (x, y) else x)
    return tuple(out)


def _flatten_shape(shape: tuple[int, ...], start: int = 0, end: int = -1) -> tuple[int, ...]:
    n = len(shape)
    start, end = start % n if n else 0, end % n if n else 0
    return (*shape[:start], math.prod(shape[start:end + 1]), *shape[end + 1:])


def _reshape(shape: tuple[int, ...], dims: Sequence[int]) -> tuple[int, ...]:
    dims = list(dims)
    if -1 in dims:
        i = dims.index(-1)
        rest = math.prod(d for j, d in enumerate(dims) if j != i)
        dims[i] = math.prod(shape) // rest if rest else 0
    return tuple(dims)


def _check_input(name: str, m: nn.Module, shape: tuple[int, ...]) -> None:
    """The checks the real layer would make: its input has the channels (features) it expects."""
    if isinstance(m, nn.Linear):
        expected, got = m.in_features, shape[-1] if shape else None
    elif isinstance(m, nn.modules.batchnorm._BatchNorm):
        expected, got = m.num_features, shape[1] if len(shape) > 1 else None
    else:
        n = len(m.kernel_size)
        expected, got = m.in_channels, shape[-n - 1] if len(shape) > n else None
        if got == expected and any(s + 2 * p < d * (k - 1) + 1 for s, k, p, d in zip(
                shape[-n:], m.kernel_size, m.padding if not isinstance(m.padding, str) else (0,) * n,
                m.dilation, strict=True)) and m.padding != "same" and not m.transposed:
            raise RuntimeError(f"{name}: input of shape {shape[1:]} is smaller than its kernel")
    if got != expected:
        raise RuntimeError(f"{name} expects {expected} input channels/features, got input of shape {shape[1:]}")


def _empty(shape: Sequence[int]) -> torch.Tensor:
    return torch.empty(tuple(shape), device="meta")


def _arg(args: tuple, kwargs: dict, i: int, name: str, default=None):
    return args[i] if len(args) > i else kwargs.get(name, default)


class _Shapes(fx.Interpreter):
    """Runs an fx graph of the model on meta tensors, computing known operations' shapes by
    formula; anything else runs on a meta copy of the model, made the first time it is needed."""

    def __init__(self, gm: fx.GraphModule, model: nn.Module, shortcuts: bool):
        super().__init__(gm)
        self.extra_traceback = False  # formatting fx's extra traceback imports much of torch (~2 s)
        self.model = model
        self._meta: nn.Module | None = None
        self.shortcuts = shortcuts
        self.flops: dict[str, int] = {}
        self.shapes: dict[str, tuple[int, ...]] = {}
        self.convs: dict[str, tuple[int, ...]] = {}  # every conv's output shape (counted or not)

    @property
    def meta(self) -> nn.Module:
        if self._meta is None:
            self._meta = meta_copy(self.model).eval()
        return self._meta

    def get_attr(self, target, args, kwargs):
        value = super().get_attr(target, args, kwargs)
        return value.to("meta") if isinstance(value, torch.Tensor) and value.device.type != "meta" else value

    def _fallback(self, target, args, kwargs):
        return self.meta.get_submodule(target)(*args, **kwargs)

    def call_module(self, target, args, kwargs):
        m = self.fetch_attr(target)
        x = args[0] if args else None
        if not isinstance(x, torch.Tensor) or len(args) != 1 or kwargs:
            return self._fallback(target, args, kwargs)
        shape = tuple(x.shape)
        if isinstance(m, nn.modules.conv._ConvNd | nn.Linear | nn.modules.batchnorm._BatchNorm):
            _check_input(target, m, shape)
        if isinstance(m, nn.modules.conv._ConvNd | nn.Linear):
            out = (*shape[:-1], m.out_features) if isinstance(m, nn.Linear) else _conv_shape(m, shape)
            if isinstance(m, nn.modules.conv._ConvNd):
                self.convs[target] = tuple(out[1:])
            if self.shortcuts or not is_shortcut(target):
                self.flops[target] = self.flops.get(target, 0) + _macs(m, shape[1:], out[1:])
                self.shapes[target] = tuple(out[1:])
            return _empty(out)
        if isinstance(m, (nn.modules.batchnorm._BatchNorm, nn.Flatten, *_PASS_MODULES)):
            if isinstance(m, nn.Flatten):
                return _empty(_flatten_shape(shape, m.start_dim, m.end_dim))
            if isinstance(m, tuple(_POOL_MODULES)):
                if getattr(m, "return_indices", False):
                    return self._fallback(target, args, kwargs)
                fn = _POOL_MODULES[type(m)]
                extra = {"dilation": m.dilation} if fn in _MAX_POOLS else {}
                return _empty(_pool_shape(fn, shape, m.kernel_size, m.stride, m.padding,
                                          ceil_mode=m.ceil_mode, **extra))
            if isinstance(m, tuple(_ADAPTIVE_MODULES)):
                if getattr(m, "return_indices", False):
                    return self._fallback(target, args, kwargs)
                return _empty(_adaptive_shape(_ADAPTIVE_MODULES[type(m)], shape, m.output_size))
            if isinstance(m, nn.Upsample | nn.ZeroPad2d | nn.ConstantPad2d | nn.ReflectionPad2d
                          | nn.ReplicationPad2d):
                return self._fallback(target, args, kwargs)
            return x
        return self._fallback(target, args, kwargs)

    def call_function(self, target, args, kwargs):
        x = args[0] if args else None
        if isinstance(x, torch.Tensor):
            shape = tuple(x.shape)
            if target in _POOL_DIMS and not _arg(args, kwargs, 6 if target in _MAX_POOLS else 99,
                                                  "return_indices", False):
                names = ("kernel_size", "stride", "padding") + (("dilation", "ceil_mode") if target in _MAX_POOLS
                                                                else ("ceil_mode",))
                kw = {n: _arg(args, kwargs, i + 1, n) for i, n in enumerate(names)
                      if _arg(args, kwargs, i + 1, n) is not None}
                return _empty(_pool_shape(target, shape, **kw))
            if target in _ADAPTIVE_DIMS and not _arg(args, kwargs, 2, "return_indices", False):
                return _empty(_adaptive_shape(target, shape, _arg(args, kwargs, 1, "output_size")))
            if target in _PASS_FUNCTIONS and target not in (F.interpolate, F.pad) and not any(
                    isinstance(a, torch.Tensor) for a in list(args[1:]) + list(kwargs.values())):
                return x
            if target is torch.flatten:
                return _empty(_flatten_shape(shape, _arg(args, kwargs, 1, "start_dim", 0),
                                             _arg(args, kwargs, 2, "end_dim", -1)))
        if target in _BINARY_FUNCTIONS and len(args) == 2 and not kwargs:
            a, b = args
            if isinstance(a, torch.Tensor) and isinstance(b, torch.Tensor):
                return _empty(_broadcast(tuple(a.shape), tuple(b.shape)))
            if isinstance(a, torch.Tensor) and isinstance(b, int | float):
                return a
            if isinstance(b, torch.Tensor) and isinstance(a, int | float):
                return b
        if target is torch.cat:
            tensors, dim = _arg(args, kwargs, 0, "tensors"), _arg(args, kwargs, 1, "dim", 0)
            if tensors and all(isinstance(t, torch.Tensor) for t in tensors):
                shape = list(tensors[0].shape)
                shape[dim] = sum(t.shape[dim] for t in tensors)
                return _empty(shape)
        if target in (getattr, operator.getitem) and not isinstance(x, torch.Tensor):
            return super().call_function(target, args, kwargs)
        return super().call_function(target, args, kwargs)

    def call_method(self, target, args, kwargs):
        x = args[0] if args else None
        if isinstance(x, torch.Tensor) and not any(isinstance(a, torch.Tensor) for a in args[1:]):
            shape = tuple(x.shape)
            if target in ("relu", "relu_", "sigmoid", "tanh", "contiguous", "clone", "detach"):
                return x
            if target == "flatten":
                return _empty(_flatten_shape(shape, _arg(args, kwargs, 1, "start_dim", 0),
                                             _arg(args, kwargs, 2, "end_dim", -1)))
            if target in ("view", "reshape") and not kwargs and all(isinstance(a, int) for a in args[1:]):
                dims = args[1] if len(args) == 2 and isinstance(args[1], list | tuple) else args[1:]
                return _empty(_reshape(shape, dims))
            if target in _BINARY_METHODS and len(args) == 2 and isinstance(args[1], int | float):
                return x
        if target in _BINARY_METHODS and len(args) == 2 and all(isinstance(a, torch.Tensor) for a in args):
            return _empty(_broadcast(tuple(args[0].shape), tuple(args[1].shape)))
        return super().call_method(target, args, kwargs)


def _trace_counts(model: nn.Module, shape: tuple[int, ...], shortcuts: bool) -> _Shapes | None:
    try:
        gm = fx.symbolic_trace(model)
    except Exception:  # not traceable: the caller runs a meta copy of the model whole
        return None
    interp = _Shapes(gm, model, shortcuts)
    with torch.no_grad():
        interp.run(_empty((1, *shape)))
    return interp


def _hook_counts(meta: nn.Module, shape: tuple[int, ...], shortcuts: bool) -> _Shapes:
    record = _Shapes.__new__(_Shapes)
    record.flops, record.shapes, record.convs = {}, {}, {}
    handles = []

    def hook(name: str):
        def save(m: nn.Module, inputs, output) -> None:
            if isinstance(m, nn.modules.conv._ConvNd):
                record.convs[name] = tuple(output.shape[1:])
            if shortcuts or not is_shortcut(name):
                record.flops[name] = record.flops.get(name, 0) + _macs(m, inputs[0].shape[1:], output.shape[1:])
                record.shapes[name] = tuple(output.shape[1:])
        return save

    for name, m in meta.named_modules():
        if isinstance(m, nn.modules.conv._ConvNd | nn.Linear):
            handles.append(m.register_forward_hook(hook(name)))
    try:
        with torch.no_grad():
            meta(_empty((1, *shape)))
    finally:
        for h in handles:
            h.remove()
    return record


def _run(model: nn.Module, input_shape: Sequence[int], shortcuts: bool) -> _Shapes:
    shape = _check_shape(input_shape)
    try:
        rec = _trace_counts(model, shape, shortcuts) or _hook_counts(meta_copy(model).eval(), shape, shortcuts)
    except Exception as exc:  # a model that does not take this shape, or cannot run on meta
        raise LandscapeError(f"cannot run {type(model).__name__} on an input of shape {shape} "
                             f"to count it ({first_line(exc)})") from None
    return rec


def layer_counts(model: nn.Module, input_shape: Sequence[int], shortcuts: bool = False) -> list[LayerCount]:
    """Per-layer counts of ``model`` for one input of ``input_shape`` (no batch dimension), in
    the order the layers first run."""
    rec = _run(model, input_shape, shortcuts)
    mods = dict(model.named_modules())
    return [LayerCount(name, type(mods[name]).__name__, rec.flops[name], mods[name].weight.numel(),
                       rec.shapes[name]) for name in rec.flops]


def conv_output_shapes(model: nn.Module, input_shape: Sequence[int]) -> dict[str, tuple[int, ...]]:
    """Every conv layer's output shape (one sample) for one input of ``input_shape``."""
    return dict(_run(model, input_shape, True).convs)


def count(model: nn.Module, input_shape: Sequence[int], shortcuts: bool = False) -> tuple[int, int]:
    """``(flops, params)`` of ``model`` for one input of shape ``input_shape`` (e.g. ``(3, 32, 32)``):
    multiply-adds and weights of the conv and linear layers; no biases, no BatchNorm; 1x1
    projection shortcuts (layers named ``shortcut``/``downsample``) only when ``shortcuts``."""
    layers = layer_counts(model, input_shape, shortcuts)
    return sum(c.flops for c in layers), sum(c.params for c in layers)


def reduction(before: int, after: int) -> float:
    """The fraction removed, in percent."""
    return 100.0 * (before - after) / before if before else math.nan


__all__ = ["LayerCount", "conv_output_shapes", "count", "layer_counts", "meta_copy", "reduction"]
