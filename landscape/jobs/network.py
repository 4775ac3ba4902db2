"""The network of a checkpoint: the one place a model is made from a file."""

from __future__ import annotations

import os
from dataclasses import dataclass

from torch import nn

from landscape.errors import LandscapeError, is_int
from landscape.io.checkpoint import Checkpoint, load_into_, read_checkpoint
from landscape.lowrank import apply_ranks_, ranks_of
from landscape.models import build_model
from landscape.prune import resize_


def network(ckpt: Checkpoint, arch: str, num_classes: int | None = None, in_channels: int | None = None,
            data=None) -> nn.Module:
    """``arch`` with ``ckpt`` loaded into it. The number of classes and input channels are the given
    ones, else ``data``'s (a :class:`landscape.Dataset`), else what the checkpoint records
    (``landscape-train`` writes both), else 10 and 3. A pruned checkpoint's recorded ``widths``
    shrink the architecture first, and a low-rank one's recorded ranks factorize its layers, so
    its tensors fit."""
    if data is not None:
        num_classes = num_classes or data.num_classes or None
        in_channels = in_channels or (data.x.shape[1] if data.x.dim() == 4 else 1)
    model = build_model(arch, num_classes=int(num_classes or ckpt.num_classes or 10),
                        in_channels=int(in_channels or ckpt.in_channels or 3))
    widths = ckpt.widths
    if widths:
        resize_(model, widths)
    ranks = ranks_of(ckpt.meta)
    if ranks:
        apply_ranks_(model, ranks)
    return load_into_(model, ckpt.state_dict, source=f"checkpoint {ckpt.path!r}")


def load_model(arch: str, path: str | os.PathLike, num_classes: int | None = None,
               in_channels: int | None = None, unsafe_pickle: bool = False) -> nn.Module:
    """:func:`network` of the checkpoint file at ``path`` (read with ``weights_only=True`` unless
    ``unsafe_pickle``)."""
    return network(read_checkpoint(path, unsafe_pickle), arch, num_classes, in_channels)


@dataclass(frozen=True)
class ModelSpec:
    """Which network a command builds (its ``--model``, ``--arch``, ``--num-classes``,
    ``--in-channels``, ``--unsafe-pickle``): the architecture ``arch`` (a zoo name or
    ``package.module:callable``) with the checkpoint ``path`` loaded into it (None: no checkpoint),
    ``num_classes`` and ``in_channels`` when given (else as :func:`network` finds them), the
    checkpoint read with ``weights_only=True`` unless ``unsafe_pickle``."""

    arch: str | None = None
    path: str | os.PathLike | None = None
    num_classes: int | None = None
    in_channels: int | None = None
    unsafe_pickle: bool = False

    def __post_init__(self):
        if self.arch is not None and (not isinstance(self.arch, str) or not self.arch.strip()):
            raise LandscapeError(f"`arch` must be a zoo name or package.module:callable, got {self.arch!r}")
        if self.path is not None:
            if not isinstance(self.path, str | os.PathLike) or os.fspath(self.path) == "":
                raise LandscapeError(f"`path` must be a checkpoint file name, got {self.path!r}")
            object.__setattr__(self, "path", os.fspath(self.path))
        for name in ("num_classes", "in_channels"):
            value = getattr(self, name)
            if value is not None and (not is_int(value) or value < 1):
                raise LandscapeError(f"`{name}` must be a positive integer or None, got {value!r}")
        if not isinstance(self.unsafe_pickle, bool):
            raise LandscapeError(f"`unsafe_pickle` must be True or False, got {self.unsafe_pickle!r}")

    def need_arch(self) -> str:
        """The architecture, or one line saying it is needed."""
        if not self.arch:
            raise LandscapeError("an architecture is needed (a zoo name or package.module:callable): give `arch`")
        return self.arch

    def read(self) -> Checkpoint:
        """The checkpoint, read once (:func:`landscape.io.checkpoint.read_checkpoint`)."""
        if self.path is None:
            raise LandscapeError("a checkpoint is needed: give `path` (the trained model)")
        return read_checkpoint(self.path, self.unsafe_pickle)

    def build(self, ckpt: Checkpoint, data=None) -> nn.Module:
        """:func:`network` of ``ckpt`` (the one :meth:`read` gave) for ``data`` (a :class:`landscape.Dataset`)."""
        return network(ckpt, self.need_arch(), self.num_classes, self.in_channels, data=data)
