"""The network of a checkpoint: the one place a model is made from a file."""

from __future__ import annotations

import os
import warnings
from dataclasses import dataclass

import torch
from torch import nn

from landscape.errors import LandscapeError, is_int
from landscape.evaluation.tokens import check_token_ids
from landscape.io.checkpoint import Checkpoint, load_into_, read_checkpoint
from landscape.lowrank import apply_ranks_, ranks_of
from landscape.models import build_model, list_models
from landscape.prune import resize_
from landscape.runtime.parallel import launcher_rank


def network(ckpt: Checkpoint, arch: str, num_classes: int | None = None, in_channels: int | None = None,
            data=None) -> nn.Module:
    """``arch`` with ``ckpt`` loaded into it. The number of classes and input channels are the given
    ones, else ``data``'s (a :class:`landscape.Dataset`), else what the checkpoint records
    (``landscape-train`` writes both), else 10 and 3. A pruned checkpoint's recorded ``widths``
    shrink the architecture first, and a low-rank one's recorded ranks factorize its layers, so
    its tensors fit."""
    tokens = data is not None and str(getattr(data, "name", "")).startswith("tokens:")
    if tokens and arch in list_models():  # a zoo network reads images: it would blame the checkpoint's shapes
        raise LandscapeError(f"--dataset {data.name} is a token file (sequences of token ids, for a language "
                             f"model); {arch} is an image network: give --arch hf:DIR (or your own "
                             "package.module:callable)")
    if data is not None:
        num_classes = num_classes or data.num_classes or None
        in_channels = in_channels or (data.x.shape[1] if data.x.dim() == 4 else 1)
    model = build_model(arch, num_classes=int(num_classes or ckpt.num_classes or 10),
                        in_channels=int(in_channels or ckpt.in_channels or 3))
    if tokens:  # named here, where both inputs are known, not by the first forward pass
        check_token_ids(data.x, model, f"--dataset {data.name}", f"--arch {arch}")
    widths = ckpt.widths
    if widths:
        resize_(model, widths)
    ranks = ranks_of(ckpt.meta)
    if ranks:
        apply_ranks_(model, ranks)
    check_weights(ckpt, model)
    return load_into_(model, ckpt.state_dict, source=f"checkpoint {ckpt.path!r}")


HALF = (torch.float16, torch.bfloat16)


def check_weights(ckpt: Checkpoint, model: nn.Module) -> None:
    """Refuse a checkpoint whose values for ``model``'s float tensors are NaN or infinite (every
    point of a surface around it would be NaN) or stored as integers (they would load as whole
    numbers: a quantized checkpoint without its scales); say in one warning that half-precision
    weights are loaded into the float32 network as they are."""
    own = model.state_dict()
    nan = inf = 0
    first, ints, half = "", [], set()
    for name, t in ckpt.state_dict.items():
        target = own.get(name)
        if target is None or not torch.is_tensor(t) or not target.is_floating_point():
            continue  # tensors the model does not have, or its integer counters
        if not t.is_floating_point():
            ints.append(f"{name} ({str(t.dtype).removeprefix('torch.')})")
            continue
        if t.dtype in HALF:
            half.add(str(t.dtype).removeprefix("torch."))
        n_nan, n_inf = int(torch.isnan(t).sum()), int(torch.isinf(t).sum())
        if (n_nan or n_inf) and not first:
            first = f"{name}: {n_nan + n_inf} of {t.numel()}"
        nan, inf = nan + n_nan, inf + n_inf
    source = f"checkpoint {ckpt.path!r}"
    if nan or inf:
        what = " and ".join(f"{n} {kind}" for n, kind in ((nan, "NaN"), (inf, "infinite")) if n)
        raise LandscapeError(f"{source} holds NaN or infinite weights ({what}; the first in {first}): every "
                             "point of a surface around it would be NaN (a diverged run is no minimum to look at)")
    if ints:
        raise LandscapeError(f"{source} stores float weights as integers ({', '.join(ints[:3])}"
                             f"{', ...' if len(ints) > 3 else ''}): they would load as whole numbers, not the "
                             "trained values (a quantized checkpoint needs its scales: save the float weights)")
    if half and launcher_rank() == 0:
        warnings.warn(f"{source} stores its weights in {' and '.join(sorted(half))}: they are loaded into the "
                      "float32 network exactly as stored, and the surface is computed in float32", stacklevel=2)


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
