"""The point a network sits at: its tensors as one ordered dict, and moving it in place.

A *direction* is an ordered ``dict[str, Tensor]`` with the same names and shapes as the tensors
it moves. ``dir_type="weights"`` means the trainable parameters; ``"states"`` means the whole
state dict, BatchNorm running statistics included.
"""

from __future__ import annotations

import hashlib
import math
from collections.abc import Iterator, Mapping, Sequence

import torch
from torch import nn

from landscape.errors import LandscapeError

DIR_TYPES = ("weights", "states")
IGNORES = ("biasbn", "none")


def ignored(t: torch.Tensor, ignore: str) -> bool:
    """Whether a tensor is left out of directions and paths: with ``ignore="biasbn"``, every 1-D
    tensor (biases, BatchNorm weights, biases and running statistics)."""
    if ignore not in IGNORES:
        raise LandscapeError(f"ignore must be one of {', '.join(IGNORES)}, got {ignore!r}")
    return ignore == "biasbn" and t.dim() <= 1


BLOCK = 1 << 18  # values (1 MB of float32): the most of one large tensor a lazy direction makes at a time


def row_blocks(shape: Sequence[int], block: int | None = None) -> list[tuple[int, int]] | None:
    """How a tensor of ``shape`` (2-D or more) larger than ``block`` values is made in consecutive
    row blocks ``[(start, stop), ...]``, or None: at once. Every block but the last holds a multiple
    of 16 values and the last at least 16, so that Gaussian draws made block after block from one
    generator equal one draw of the whole tensor (torch's CPU sampler fills 16 values at a time)."""
    block = BLOCK if block is None else block
    n = math.prod(shape)
    if len(shape) < 2 or n <= block or shape[0] < 2:
        return None
    row = n // shape[0]
    step = 16 // math.gcd(16, row)  # rows per block: a multiple of this keeps blocks at 16k values
    rows = max(step, (block // row) // step * step)
    if rows >= shape[0]:
        return None
    out, start = [], 0
    while start < shape[0]:
        stop = min(shape[0], start + rows)
        if stop < shape[0] and (shape[0] - stop) * row < 16:
            stop = shape[0]  # a last block of fewer than 16 values joins this one
        out.append((start, stop))
        start = stop
    return out


def block_numel(shape: Sequence[int]) -> int:
    """The most values of a tensor of ``shape`` made at once: its largest row block (:func:`row_blocks`),
    or all of it."""
    plan = row_blocks(shape)
    n = math.prod(shape)
    return n if plan is None else max(stop - start for start, stop in plan) * (n // shape[0])


class LazyDirection(Mapping):
    """A direction that makes its tensors when they are read, one at a time (CPU float32), instead
    of holding them: :class:`Mover` adds it tensor by tensor, a large tensor block of rows by block
    of rows (:meth:`blocks`), so no whole direction, and no whole large tensor, is ever held.
    Subclasses implement ``__getitem__``, ``__iter__`` and ``__len__`` (and ``shape_of`` when
    making a tensor to learn its shape costs, ``blocks`` when they can make part of one)."""

    def blocks(self, name: str, out: torch.Tensor) -> Iterator[tuple[slice, torch.Tensor]]:
        """Tensor ``name`` as ``(rows, values)`` pairs, consecutive blocks of its first dimension
        written into ``out`` one after the other (by default the whole tensor at once)."""
        yield slice(None), self.read_(name, out)

    def scratch_numel(self, name: str) -> int:
        """The size of ``out`` that :meth:`blocks` needs for tensor ``name``."""
        return math.prod(self.shape_of(name))

    def shape_of(self, name: str) -> tuple[int, ...]:
        return tuple(self[name].shape)

    def __contains__(self, name) -> bool:  # by name, without making the tensor (Mapping's would)
        return any(k == name for k in self)

    def read_(self, name: str, out: torch.Tensor) -> torch.Tensor:
        """Tensor ``name`` written into the flat float32 buffer ``out`` (see :func:`scratch`);
        returns the view of ``out`` that holds it. Reusing one buffer keeps memory flat."""
        t = self[name]
        return out[:t.numel()].view(t.shape).copy_(t)


def scratch(directions: Sequence[Mapping[str, torch.Tensor]]) -> torch.Tensor | None:
    """One flat float32 CPU buffer as large as the largest tensor of the lazy ``directions`` (None
    when there is none): what :meth:`LazyDirection.read_` writes into."""
    sizes = [d.scratch_numel(k) for d in directions if isinstance(d, LazyDirection) for k in d]
    return scratch_buffer(max(sizes)) if sizes else None


def scratch_buffer(numel: int) -> torch.Tensor:
    """A flat float32 CPU tensor of ``numel`` elements on pages of its own (an anonymous mmap),
    returned to the system when the tensor is dropped: buffers made one after the other never
    leave holes in the heap that the next one cannot reuse (the evaluator keeps freed heap memory)."""
    import mmap
    import warnings

    if numel < 1 << 18:  # small: the heap is fine
        return torch.empty(numel, dtype=torch.float32)
    buf = mmap.mmap(-1, max(1, numel) * 4)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # "buffer is not writable" does not apply to an anonymous map
        return torch.frombuffer(buf, dtype=torch.float32, count=numel)


def live_tensors(model: nn.Module, dir_type: str = "weights") -> dict[str, torch.Tensor]:
    """The model's own tensors (not copies) that a direction of ``dir_type`` moves."""
    if dir_type == "weights":
        return {name: p.data for name, p in model.named_parameters()}
    if dir_type == "states":
        return dict(model.state_dict(keep_vars=False))
    raise LandscapeError(f"dir_type must be one of {', '.join(DIR_TYPES)}, got {dir_type!r}")


def snapshot(model: nn.Module, dir_type: str = "weights") -> dict[str, torch.Tensor]:
    """A detached copy of the tensors :func:`live_tensors` returns: the origin theta0."""
    return {k: v.detach().clone() for k, v in live_tensors(model, dir_type).items()}


def is_float(t: torch.Tensor) -> bool:
    return t.is_floating_point()


def place_(model: nn.Module, device: torch.device | str, channels_last: bool = False) -> nn.Module:
    """Move ``model`` to ``device`` (and channels-last memory format) in place; returns it.

    Both replace the tensors behind the parameters, so whatever holds them (a :class:`Mover`, an
    optimizer) must look them up again afterwards, as :class:`Mover` does at every move.
    """
    model.to(device)
    if channels_last:
        model.to(memory_format=torch.channels_last)
    return model


def uses_channels_last(model: nn.Module, sample: torch.Tensor | None) -> bool:
    """Whether channels-last pays and works: a conv net on 4-D inputs (exact, 1.1-1.6x faster on
    CPU) that runs one channels-last sample in eval mode (a model that calls ``.view`` on its
    feature maps does not, and keeps its memory format)."""
    has_conv = any(isinstance(m, nn.Conv2d) for m in model.modules())
    if not (has_conv and torch.is_tensor(sample) and sample.dim() == 4 and sample.is_floating_point()):
        return False
    first = next(iter(model.parameters()), None)
    x = sample[:1].to(first.device if first is not None else sample.device)
    was_training = model.training
    try:
        model.eval()
        with torch.no_grad():
            model(x.contiguous(memory_format=torch.channels_last))
        return True
    except Exception:  # noqa: BLE001 - any failure: run as the model is; a real error shows up there
        return False
    finally:
        model.train(was_training)


class Mover:
    """Sets a model's tensors to ``origin + sum_k a_k * d_k`` in place.

    Built once per run; :meth:`move_` is called once per grid point. Integer buffers (such as
    BatchNorm's ``num_batches_tracked``) are never moved. The model's tensors are looked up at
    every move, and the origin and directions follow them to their device, dtype and memory
    format, so moving the model after building the mover (to a GPU, channels-last) is safe.

    Memory: an origin or direction tensor that already matches the model's (device, dtype,
    strides) is used as it is, not copied. Held directions (dicts) are added with fused foreach
    ops; a :class:`LazyDirection` is read and added one tensor at a time, so beyond the origin a
    move needs one tensor's worth of memory, not whole directions.
    """

    def __init__(
        self,
        model: nn.Module,
        origin: Mapping[str, torch.Tensor],
        directions: Sequence[Mapping[str, torch.Tensor]],
        dir_type: str = "weights",
    ):
        live = live_tensors(model, dir_type)
        names = [k for k, v in live.items() if is_float(v)]
        for d in directions:
            missing = [k for k in names if k not in d]
            if missing:
                raise LandscapeError(
                    f"direction does not fit the model: no entry for {', '.join(missing[:3])}"
                    + (f" (+{len(missing) - 3} more)" if len(missing) > 3 else "")
                )
            shape = d.shape_of if isinstance(d, LazyDirection) else (lambda k, d=d: tuple(d[k].shape))
            bad = [k for k in names if tuple(shape(k)) != tuple(live[k].shape)]
            if bad:
                raise LandscapeError(f"direction does not fit the model: wrong shape for {', '.join(bad[:3])}")
        self.model, self.dir_type, self.names = model, dir_type, names
        self._lazy = [isinstance(d, LazyDirection) for d in directions]
        self._source = ([origin[k] for k in names],
                        [d if lazy else [d[k] for k in names] for d, lazy in zip(directions, self._lazy, strict=True)])
        self._layout: list | None = None
        self._origin: list[torch.Tensor] = []
        self._dirs: list = []
        self._scratch: torch.Tensor | None = None

    def _targets(self) -> list[torch.Tensor]:
        live = live_tensors(self.model, self.dir_type)
        targets = [live[k] for k in self.names]
        layout = [(t.device, t.dtype, t.stride()) for t in targets]
        if layout != self._layout:  # first move, or the model was moved since: follow it

            def like(t: torch.Tensor, src: torch.Tensor) -> torch.Tensor:
                if (src.device, src.dtype, src.stride()) == (t.device, t.dtype, t.stride()):
                    return src  # already as the model holds it: no copy
                return torch.empty_like(t).copy_(src)

            origin, dirs = self._source
            self._origin = []  # drop the old copies before making new ones
            self._dirs = []
            self._origin = [like(t, s) for t, s in zip(targets, origin, strict=True)]
            self._dirs = [d if lazy else [like(t, s) for t, s in zip(targets, d, strict=True)]
                          for d, lazy in zip(dirs, self._lazy, strict=True)]
            self._layout = layout
        return targets

    @torch.no_grad()
    def move_(self, coords: Sequence[float]) -> None:
        """Set the model to ``origin + sum(a_k * d_k)`` for ``coords = (a_1, a_2, ...)``."""
        if len(coords) != len(self._source[1]):
            raise ValueError(f"expected {len(self._source[1])} coordinates, got {len(coords)}")
        targets = self._targets()
        torch._foreach_copy_(targets, self._origin)
        for a, d, lazy in zip(coords, self._dirs, self._lazy, strict=True):
            if a == 0.0:
                continue
            if not lazy:
                torch._foreach_add_(targets, d, alpha=float(a))
                continue
            if self._scratch is None:
                self._scratch = scratch(self._source[1])
            for name, t in zip(self.names, targets, strict=True):
                for rows, block in d.blocks(name, self._scratch):
                    t[rows].add_(block.to(t.device, t.dtype), alpha=float(a))

    def restore_(self) -> None:
        """Put the model back at the origin."""
        self.move_([0.0] * len(self._source[1]))


def tensor_bytes(t: torch.Tensor) -> memoryview:
    """A tensor's values as bytes on the CPU (bfloat16, which numpy lacks, as float32): what checksums
    hash. A view of the tensor's own memory where it is a contiguous CPU tensor already (no copy)."""
    c = t.detach().cpu().contiguous()
    if c.numel() == 0:
        return memoryview(b"")
    return memoryview((c.float() if c.dtype == torch.bfloat16 else c).numpy().reshape(-1)).cast("B")



def tensors_checksum(tensors: Mapping[str, torch.Tensor]) -> str:
    """SHA-256 of named tensors' names, dtypes, shapes and bytes: the identity of a model's point."""
    h = hashlib.sha256()
    for name, t in tensors.items():
        h.update(f"{name}|{t.dtype}|{tuple(t.shape)}|".encode())
        h.update(tensor_bytes(t))
    return h.hexdigest()
