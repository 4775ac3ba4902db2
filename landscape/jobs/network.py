"""The network of a checkpoint: the one place a model is made from a file."""

from __future__ import annotations

import os

from torch import nn

from landscape.io.checkpoint import Checkpoint, load_into_, read_checkpoint
from landscape.models import build_model


def network(ckpt: Checkpoint, arch: str, num_classes: int | None = None, in_channels: int | None = None,
            data=None) -> nn.Module:
    """``arch`` with ``ckpt`` loaded into it. The number of classes and input channels are the given
    ones, else ``data``'s (a :class:`landscape.Dataset`), else what the checkpoint records
    (``landscape-train`` writes both), else 10 and 3. A pruned checkpoint's recorded ``widths``
    shrink the architecture first, and a low-rank one's recorded ranks factorize its layers, so
    its tensors fit."""
    from landscape.lowrank import apply_ranks_, ranks_of
    from landscape.prune import resize_

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
