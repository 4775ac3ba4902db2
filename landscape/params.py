"""The point a network sits at: its tensors as one ordered dict, and moving it in place.

A *direction* is an ordered ``dict[str, Tensor]`` with the same names and shapes as the tensors
it moves. ``dir_type="weights"`` means the trainable parameters; ``"states"`` means the whole
state dict, BatchNorm running statistics included.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

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
    """Sets a model's tensors to ``origin + sum_k a_k * d_k`` in place, with fused foreach ops.

    Built once per run; :meth:`move_` is called once per grid point. Integer buffers (such as
    BatchNorm's ``num_batches_tracked``) are never moved. The model's tensors are looked up at
    every move, and the origin and directions follow them to their device, dtype and memory
    format, so moving the model after building the mover (to a GPU, channels-last) is safe.
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
            bad = [k for k in names if tuple(d[k].shape) != tuple(live[k].shape)]
            if bad:
                raise LandscapeError(f"direction does not fit the model: wrong shape for {', '.join(bad[:3])}")
        self.model, self.dir_type, self.names = model, dir_type, names
        self._source = ([origin[k] for k in names], [[d[k] for k in names] for d in directions])
        self._layout: list | None = None
        self._origin: list[torch.Tensor] = []
        self._dirs: list[list[torch.Tensor]] = []

    def _targets(self) -> list[torch.Tensor]:
        live = live_tensors(self.model, self.dir_type)
        targets = [live[k] for k in self.names]
        layout = [(t.device, t.dtype, t.stride()) for t in targets]
        if layout != self._layout:  # first move, or the model was moved since: follow it

            def like(t: torch.Tensor, src: torch.Tensor) -> torch.Tensor:
                return torch.empty_like(t).copy_(src)

            origin, dirs = self._source
            self._origin = [like(t, s) for t, s in zip(targets, origin, strict=True)]
            self._dirs = [[like(t, s) for t, s in zip(targets, d, strict=True)] for d in dirs]
            self._layout = layout
        return targets

    @torch.no_grad()
    def move_(self, coords: Sequence[float]) -> None:
        """Set the model to ``origin + sum(a_k * d_k)`` for ``coords = (a_1, a_2, ...)``."""
        if len(coords) != len(self._source[1]):
            raise ValueError(f"expected {len(self._source[1])} coordinates, got {len(coords)}")
        targets = self._targets()
        torch._foreach_copy_(targets, self._origin)
        for a, d in zip(coords, self._dirs, strict=True):
            if a != 0.0:
                torch._foreach_add_(targets, d, alpha=float(a))

    def restore_(self) -> None:
        """Put the model back at the origin."""
        self.move_([0.0] * len(self._source[1]))
