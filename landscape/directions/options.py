"""Which directions a surface or a measure uses: :class:`Directions` (given tensors, or random ones
from a seed, normalized and with an ignore rule).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import torch

from landscape.directions.sampling import NORMS, SEMANTICS
from landscape.errors import LandscapeError, check_choice, check_per_axis, is_int
from landscape.space.params import DIR_TYPES, IGNORES


@dataclass(frozen=True)
class Directions:
    """The directions of a surface: your own ``tensors`` (one dict of tensors named like the
    model's per axis), else random ones drawn from ``seed`` and normalized by ``norm`` with the
    ``ignore`` rule (one for all axes, or one per axis) under ``semantics``. ``dir_type``: over the
    parameters ("weights") or the whole state dict, BatchNorm statistics included ("states").
    Random directions are regenerated tensor by tensor at every point (the same values; a surface
    then holds the origin and one tensor beyond the model); ``hold=True`` keeps them whole instead
    (two more copies of the model's size, for when memory is plentiful and points are cheap)."""

    tensors: Sequence[Mapping[str, torch.Tensor]] | None = None
    dir_type: str = "weights"
    norm: str | Sequence[str] = "filter"
    ignore: str | Sequence[str] = "biasbn"
    seed: int = 0
    semantics: str = "landscape"
    hold: bool = False

    def __post_init__(self):
        check_choice("dir_type", self.dir_type, DIR_TYPES)
        object.__setattr__(self, "norm", check_per_axis("norm", self.norm, NORMS))
        object.__setattr__(self, "ignore", check_per_axis("ignore", self.ignore, IGNORES))
        check_choice("semantics", self.semantics, SEMANTICS)
        if not is_int(self.seed) or not 0 <= self.seed < 2**63:
            raise LandscapeError(f"`seed` must be a non-negative integer below 2**63, got {self.seed!r}")
        if not isinstance(self.hold, bool):
            raise LandscapeError(f"`hold` must be True or False, got {self.hold!r}")
        if self.tensors is not None:
            if isinstance(self.tensors, Mapping) or not isinstance(self.tensors, Sequence) or \
                    not all(isinstance(d, Mapping) for d in self.tensors):
                raise LandscapeError("`tensors` must be a list of directions, each a dict of tensors named like "
                                     "the model's")
            object.__setattr__(self, "tensors", tuple(self.tensors))
