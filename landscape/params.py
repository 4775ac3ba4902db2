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


class Mover:
    """Sets a model's tensors to ``origin + sum_k a_k * d_k`` in place, with fused foreach ops.

    Built once per run; :meth:`move_` is called once per grid point. Integer buffers (such as
    BatchNorm's ``num_batches_tracked``) are never moved.
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
        self.names = names
        self._targets = [live[k] for k in names]
        self._origin = [origin[k].to(device=live[k].device, dtype=live[k].dtype) for k in names]
        self._dirs = [[d[k].to(device=live[k].device, dtype=live[k].dtype) for k in names] for d in directions]

    @torch.no_grad()
    def move_(self, coords: Sequence[float]) -> None:
        """Set the model to ``origin + sum(a_k * d_k)`` for ``coords = (a_1, a_2, ...)``."""
        if len(coords) != len(self._dirs):
            raise ValueError(f"expected {len(self._dirs)} coordinates, got {len(coords)}")
        torch._foreach_copy_(self._targets, self._origin)
        for a, d in zip(coords, self._dirs, strict=True):
            if a != 0.0:
                torch._foreach_add_(self._targets, d, alpha=float(a))

    def restore_(self) -> None:
        """Put the model back at the origin."""
        self.move_([0.0] * len(self._dirs))
