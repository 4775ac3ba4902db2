"""Directions in parameter space: random (normalized) and interpolation.

Normalization (Li et al., "Visualizing the Loss Landscape of Neural Nets"):

- ``filter``: each filter ``d_i`` (output channel of a conv, row of a linear layer) is rescaled to
  the norm of the matching filter of the model, ``d_i <- d_i / ||d_i|| * ||theta_i||``;
- ``layer``: the same per tensor; ``weight``: the same over the whole model; ``none``: raw Gaussian;
- ``dfilter``/``dlayer``: each filter/tensor of the direction scaled to unit norm;
- ``elementwise``: each entry scaled by the model's, ``d_i <- d_i * |theta_i|`` (the adaptive
  scale of Kwon et al.'s ASAM and Andriushchenko et al.'s adaptive sharpness: a Gaussian direction
  then has, filter by filter, the expected squared norm ``||theta_i||^2`` of the filter rule).

With ``ignore="biasbn"`` every 1-D tensor (biases, BatchNorm weights and statistics) gets a zero
direction; otherwise a 1-D tensor is normalized as one filter. Each normalization has its own
default rule (:func:`default_ignore`): ``"none"`` for ``elementwise`` (those papers perturb every
parameter), ``"biasbn"`` for the others (the original tool's ``--xignore biasbn``).

``semantics="original"`` reproduces the original loss-landscape tool's rules exactly where they
differ from ours: a 1-D tensor that is not ignored gets a direction *equal to the weights
themselves*, ``weight`` multiplies element-wise (``d * w``, per tensor) and ``layer`` divides
without a guard against zero. Their files: :mod:`landscape.io.directions_file`.
"""

from __future__ import annotations

import hashlib
import math
from collections.abc import Mapping, Sequence

import torch

from landscape.errors import LandscapeError
from landscape.io.directions_file import Direction
from landscape.space.params import (
    IGNORES,
    LazyDirection,
    block_numel,
    ignored,
    is_float,
    row_blocks,
    scratch,
    scratch_buffer,
)

NORMS = ("filter", "layer", "weight", "dfilter", "dlayer", "elementwise", "none")
SEMANTICS = ("landscape", "original")
EPS = 1e-10


def default_ignore(norm: str) -> str:
    """The ignore rule a normalization takes when none is given: ``"none"`` (every tensor) for
    ``elementwise``, as the papers that define it; ``"biasbn"`` for the others, as the original tool."""
    return "none" if norm == "elementwise" else "biasbn"


def _check(norm: str, ignore: str, semantics: str = "landscape") -> None:
    if norm not in NORMS:
        raise LandscapeError(f"norm must be one of {', '.join(NORMS)}, got {norm!r}")
    if ignore not in IGNORES:
        raise LandscapeError(f"ignore must be one of {', '.join(IGNORES)}, got {ignore!r}")
    if semantics not in SEMANTICS:
        raise LandscapeError(f"semantics must be one of {', '.join(SEMANTICS)}, got {semantics!r}")


def _step(d: torch.Tensor, w: torch.Tensor, norm: str, ignore: str, original: bool) -> tuple[str, object]:
    """How one tensor ``d`` of a direction is normalized against ``w``, as ``(op, operand)`` for
    :func:`_apply_`: recorded once, the step replays on a regenerated ``d`` to the same bits."""
    if not is_float(d) or ignored(d, ignore):
        return "zero", None
    if original and d.dim() <= 1:  # the original tool: a kept bias/BN direction is the weights
        return "copy", w
    if norm in ("filter", "dfilter"):  # each filter (first-dimension slice) to the norm of w's, or to 1
        target = w if norm == "filter" else None
        if d.dim() <= 1:
            return "mul", (target.norm() if target is not None else 1.0) / (d.norm() + EPS)
        dn = d.flatten(1).norm(dim=1)
        tn = target.flatten(1).norm(dim=1) if target is not None else torch.ones_like(dn)
        return "mul", (tn / (dn + EPS)).view(-1, *([1] * (d.dim() - 1)))
    if norm == "layer":
        return "mul", w.norm() / (d.norm() if original else d.norm() + EPS)
    if norm == "dlayer":
        return "div", d.norm() if original else d.norm() + EPS
    if norm == "weight" and original:
        return "mul", w
    if norm == "elementwise":
        return "mul_abs", w
    return "keep", None


def _streamed_step(generator: torch.Generator, shape, plan: list[tuple[int, int]], buffer: torch.Tensor,
                   w: torch.Tensor, norm: str, ignore: str, original: bool) -> tuple[tuple[str, object], torch.Tensor]:
    """:func:`_step` of a large tensor (2-D or more) drawn from ``generator`` block of rows by block
    of rows into ``buffer`` (never whole), and the sum of its squares (float64). A filter's norm is
    its row's, so the filter steps are those of the whole tensor to the bit; the layer norm is
    summed over the blocks in float64, within 1e-7 (relative) of the whole tensor's."""
    row = math.prod(shape) // shape[0]
    norms, sq = [], torch.zeros((), dtype=torch.float64)
    squares = norm in ("layer", "dlayer", "weight")
    for start, stop in plan:
        d = buffer[:(stop - start) * row].view(stop - start, *shape[1:])
        torch.randn(d.shape, generator=generator, dtype=torch.float32, out=d)
        norms.append(d.flatten(1).norm(dim=1))
        if squares:
            sq = sq + torch.linalg.vector_norm(d, dtype=torch.float64) ** 2
    if ignored(w, ignore):
        return ("zero", None), sq
    dn = torch.cat(norms)
    if norm in ("filter", "dfilter"):
        tn = w.flatten(1).norm(dim=1) if norm == "filter" else torch.ones_like(dn)
        return ("mul", (tn / (dn + EPS)).view(-1, *([1] * (len(shape) - 1)))), sq
    whole = sq.sqrt().float()
    if norm == "layer":
        return ("mul", w.norm() / (whole if original else whole + EPS)), sq
    if norm == "dlayer":
        return ("div", whole if original else whole + EPS), sq
    if norm == "weight" and original:
        return ("mul", w), sq
    if norm == "elementwise":
        return ("mul_abs", w), sq
    return ("keep", None), sq


def _apply_(d: torch.Tensor, step: tuple[str, object]) -> torch.Tensor:
    op, operand = step
    if op == "zero":
        return d.zero_()
    if op == "copy":
        return d.copy_(operand)
    if op == "mul":
        return d.mul_(operand)
    if op == "mul_abs":  # |w| made block by block, never held beside w
        return d.mul_(operand.abs())
    if op == "div":
        return d.div_(operand)
    return d


def normalize_(
    direction: Direction, origin: Mapping[str, torch.Tensor], norm: str = "filter", ignore: str = "biasbn",
    semantics: str = "landscape",
) -> Direction:
    """Rescale ``direction`` in place against ``origin`` (see the module docstring)."""
    _check(norm, ignore, semantics)
    original = semantics == "original"
    active = []
    for name, d in direction.items():
        step = _step(d, origin[name], norm, ignore, original)
        _apply_(d, step)
        if step[0] not in ("zero", "copy"):
            active.append(name)
    if norm == "weight" and not original and active:
        dn = torch.sqrt(sum(direction[k].double().pow(2).sum() for k in active))
        wn = torch.sqrt(sum(origin[k].double().pow(2).sum() for k in active))
        scale = float(wn / (dn + EPS))
        for k in active:
            direction[k].mul_(scale)
    return direction


class SeededDirection(LazyDirection):
    """A random direction that holds no tensor: each one is drawn again from the generator state
    recorded before it and normalized by the step recorded for it, to the same bits as
    :func:`random_direction` gives. Building it draws every tensor once (one at a time); a
    :class:`landscape.space.params.Mover` then adds it tensor by tensor, so a surface holds the origin
    and one tensor's worth of direction instead of whole directions."""

    def __init__(self, origin: Mapping[str, torch.Tensor], norm: str = "filter", ignore: str = "biasbn",
                 generator: torch.Generator | None = None, semantics: str = "landscape"):
        _check(norm, ignore, semantics)
        original = semantics == "original"
        generator = generator if generator is not None else torch.default_generator
        self._shapes: dict[str, tuple[int, ...]] = {}
        self._states: dict[str, torch.Tensor | None] = {}
        self._steps: dict[str, tuple[str, object]] = {}
        active = []
        dsq, wsq = 0, 0
        self._blocks = {k: row_blocks(tuple(v.shape)) for k, v in origin.items()}
        buffer = scratch_buffer(max((block_numel(tuple(v.shape)) for v in origin.values()), default=0))
        for k, v in origin.items():
            self._shapes[k] = tuple(v.shape)
            w = v.detach().cpu().float()
            if not is_float(v):
                self._states[k] = None
                self._steps[k] = _step(torch.zeros(v.shape), w, norm, ignore, original)
                continue
            self._states[k] = generator.get_state()
            if self._blocks[k] is None:
                d = torch.randn(v.shape, generator=generator, dtype=torch.float32, out=buffer[:v.numel()].view(v.shape))
                step = _step(d, w, norm, ignore, original)
                d_sq = d.double().pow(2).sum() if norm == "weight" else 0
            else:  # a large tensor: drawn block by block, its step from the blocks' norms
                step, d_sq = _streamed_step(generator, v.shape, self._blocks[k], buffer, w, norm, ignore, original)
            if step[0] == "copy":
                step = ("copy", w.clone())
            self._steps[k] = step
            if norm == "weight" and not original and step[0] not in ("zero", "copy"):
                active.append(k)
                dsq = dsq + d_sq
                wsq = wsq + w.double().pow(2).sum()
            d = w = None  # one tensor at a time
        self._scale = float(torch.sqrt(wsq) / (torch.sqrt(dsq) + EPS)) if active else None
        self._scaled = set(active)

    def scratch_numel(self, name: str) -> int:
        return block_numel(self._shapes[name])

    def blocks(self, name: str, out: torch.Tensor):
        plan, state = self._blocks[name], self._states[name]
        if plan is None or state is None:
            yield slice(None), self.read_(name, out)
            return
        shape = self._shapes[name]
        row = math.prod(shape) // shape[0]
        g = torch.Generator()
        g.set_state(state)
        op, operand = self._steps[name]
        for start, stop in plan:
            d = out[:(stop - start) * row].view(stop - start, *shape[1:])
            torch.randn(d.shape, generator=g, dtype=torch.float32, out=d)
            rows = torch.is_tensor(operand) and operand.dim() > 0 and operand.shape[0] == shape[0]
            _apply_(d, (op, operand[start:stop] if rows else operand))
            if name in self._scaled:
                d.mul_(self._scale)
            yield slice(start, stop), d

    def __getitem__(self, name: str) -> torch.Tensor:
        return self.read_(name, scratch_buffer(math.prod(self._shapes[name])))

    def __contains__(self, name) -> bool:
        return name in self._shapes

    def read_(self, name: str, out: torch.Tensor) -> torch.Tensor:
        shape, state = self._shapes[name], self._states[name]
        d = out[:math.prod(shape)].view(shape)
        if state is None:
            return d.zero_()
        g = torch.Generator()
        g.set_state(state)
        _apply_(torch.randn(shape, generator=g, dtype=torch.float32, out=d), self._steps[name])
        if name in self._scaled:
            d.mul_(self._scale)
        return d

    def shape_of(self, name: str) -> tuple[int, ...]:
        return self._shapes[name]

    def __iter__(self):
        return iter(self._shapes)

    def __len__(self) -> int:
        return len(self._shapes)


class Difference(LazyDirection):
    """``target - origin``, one tensor at a time (the two models are held, their difference is not)."""

    def __init__(self, origin: Mapping[str, torch.Tensor], target: Mapping[str, torch.Tensor]):
        _check_pair(origin, target)
        self._origin, self._target = origin, target

    def __getitem__(self, name: str) -> torch.Tensor:
        v = self._origin[name]
        if not is_float(v):
            return torch.zeros(v.shape)
        return self._target[name].detach().cpu().float() - v.detach().cpu().float()

    def scratch_numel(self, name: str) -> int:
        return block_numel(self.shape_of(name))

    def blocks(self, name: str, out: torch.Tensor):
        v = self._origin[name]
        plan = row_blocks(tuple(v.shape)) if is_float(v) else None
        if plan is None:
            yield slice(None), self.read_(name, out)
            return
        row = v.numel() // v.shape[0]
        for start, stop in plan:
            d = out[:(stop - start) * row].view(stop - start, *v.shape[1:])
            d.copy_(self._target[name][start:stop]).sub_(v[start:stop].detach().cpu().float())
            yield slice(start, stop), d

    def shape_of(self, name: str) -> tuple[int, ...]:
        return tuple(self._origin[name].shape)

    def __contains__(self, name) -> bool:
        return name in self._origin

    def __iter__(self):
        return iter(self._origin)

    def __len__(self) -> int:
        return len(self._origin)


def random_direction(
    origin: Mapping[str, torch.Tensor],
    norm: str = "filter",
    ignore: str = "biasbn",
    generator: torch.Generator | None = None,
    semantics: str = "landscape",
) -> Direction:
    """A Gaussian direction shaped like ``origin``, normalized by :func:`normalize_`.

    Drawn on the CPU in float32 in the order of ``origin``, so a seed gives the same direction
    on every machine and every MPI rank.
    """
    _check(norm, ignore, semantics)
    d = {
        k: (torch.randn(v.shape, generator=generator, dtype=torch.float32) if is_float(v) else torch.zeros(v.shape))
        for k, v in origin.items()
    }
    cpu_origin = {k: v.detach().cpu().float() for k, v in origin.items()}
    return normalize_(d, cpu_origin, norm, ignore, semantics)


def per_axis(value: str | Sequence[str], count: int, what: str) -> list[str]:
    """One setting per axis: a single value for all, or exactly ``count`` of them."""
    if isinstance(value, str):
        return [value] * count
    values = list(value)
    if len(values) < count:
        raise LandscapeError(f"{count} directions need {count} {what} settings, got {len(values)}")
    return values[:count]


def random_directions(
    origin: Mapping[str, torch.Tensor], count: int, norm: str | Sequence[str] = "filter",
    ignore: str | Sequence[str] = "biasbn", seed: int = 0, semantics: str = "landscape", lazy: bool = False,
) -> list[Direction]:
    """``count`` independent normalized directions from one seeded generator; ``norm`` and
    ``ignore`` may be given per direction (x, y, z). ``lazy``: :class:`SeededDirection` objects
    (the same values, regenerated when read) instead of dicts of tensors."""
    g = torch.Generator().manual_seed(seed)
    norms, ignores = per_axis(norm, count, "norm"), per_axis(ignore, count, "ignore")
    make = SeededDirection if lazy else random_direction
    return [make(origin, n, i, g, semantics) for n, i in zip(norms, ignores, strict=True)]


def directions_checksum(directions: Sequence[Mapping[str, torch.Tensor]]) -> str:
    """SHA-256 of the directions' names and float32 bytes: equal on every rank or not at all."""
    h = hashlib.sha256()
    buffer = scratch(directions)
    for d in directions:
        for name in d:
            h.update(name.encode())
            if not isinstance(d, LazyDirection):
                h.update(memoryview(d[name].detach().cpu().float().contiguous().numpy()).cast("B"))
                continue
            for _, block in d.blocks(name, buffer):  # rows in order: the bytes of the whole tensor
                h.update(memoryview(block.numpy()).cast("B"))  # in place: no copy
    return h.hexdigest()


def _check_pair(origin: Mapping[str, torch.Tensor], target: Mapping[str, torch.Tensor]) -> None:
    missing = [k for k in origin if k not in target]
    if missing:
        raise LandscapeError(f"the second model lacks {', '.join(missing[:3])}: it is not the same architecture")
    bad = [k for k in origin if tuple(origin[k].shape) != tuple(target[k].shape)]
    if bad:
        raise LandscapeError(f"the second model differs in shape at {', '.join(bad[:3])}")


def interpolation_direction(origin: Mapping[str, torch.Tensor], target: Mapping[str, torch.Tensor],
                            lazy: bool = False) -> Direction:
    """``target - origin``: a = 0 is the first model, a = 1 the second. Not normalized. ``lazy``:
    a :class:`Difference` (computed tensor by tensor when read)."""
    _check_pair(origin, target)
    if lazy:
        return Difference(origin, target)
    return {
        k: (target[k].detach().cpu().float() - v.detach().cpu().float()) if is_float(v) else torch.zeros(v.shape)
        for k, v in origin.items()
    }


__all__ = [
    "NORMS", "SEMANTICS", "Difference", "SeededDirection", "default_ignore", "directions_checksum",
    "interpolation_direction", "normalize_", "random_direction", "random_directions",
]
