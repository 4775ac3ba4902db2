"""Which directions a surface or a measure uses: :class:`Directions` (given tensors, or random ones
from a seed, normalized and with an ignore rule).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import torch

from landscape.directions.sampling import NORMS, SEMANTICS, default_ignore
from landscape.errors import LandscapeError, check_choice, check_per_axis, is_int
from landscape.space.params import DIR_TYPES, IGNORES


@dataclass(frozen=True)
class Directions:
    """The directions of a surface: your own ``tensors`` (one dict of tensors named like the
    model's per axis), else random ones drawn from ``seed`` and normalized by ``norm`` with the
    ``ignore`` rule (one for all axes, or one per axis; None: each normalization's own,
    :func:`landscape.directions.sampling.default_ignore`: ``"none"`` for ``"elementwise"``,
    ``"biasbn"`` for the others) under ``semantics``. ``dir_type``: over the
    parameters ("weights") or the whole state dict, BatchNorm statistics included ("states").
    Random directions are regenerated tensor by tensor at every point (the same values; a surface
    then holds the origin and one tensor beyond the model); ``hold=True`` keeps them whole instead
    (two more copies of the model's size, for when memory is plentiful and points are cheap)."""

    tensors: Sequence[Mapping[str, torch.Tensor]] | None = None
    dir_type: str = "weights"
    norm: str | Sequence[str] = "filter"
    ignore: str | Sequence[str] | None = None
    seed: int = 0
    semantics: str = "landscape"
    hold: bool = False

    def __post_init__(self):
        check_choice("dir_type", self.dir_type, DIR_TYPES)
        object.__setattr__(self, "norm", check_per_axis("norm", self.norm, NORMS))
        norms = [self.norm] if isinstance(self.norm, str) else list(self.norm)
        if self.ignore is None:
            rules = [default_ignore(n) for n in norms]
            object.__setattr__(self, "ignore", rules[0] if len(set(rules)) == 1 else tuple(rules))
        elif not isinstance(self.ignore, str) and isinstance(self.ignore, Sequence) and None in self.ignore:
            object.__setattr__(self, "ignore", tuple(default_ignore(norms[min(k, len(norms) - 1)]) if i is None else i
                                                     for k, i in enumerate(self.ignore)))
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
