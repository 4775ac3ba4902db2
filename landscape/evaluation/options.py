"""How each point is evaluated: :class:`EvalOptions` (loss, accuracy, batch size, device, precision,
compile, threads, BatchNorm recomputation, forward function).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import torch

from landscape.data.batches import forward
from landscape.errors import LandscapeError, check_choice, is_int
from landscape.evaluation.losses import LOSSES
from landscape.runtime.device import resolve_device

PRECISIONS = ("fp32", "bf16")


@dataclass(frozen=True)
class EvalOptions:
    """How each point is evaluated. ``loss_fn(output, batch) -> mean loss`` or "crossentropy",
    "mse" (None: crossentropy); ``accuracy_fn`` likewise ("auto": argmax accuracy for class labels;
    None: no accuracy). ``batch_size`` None: the fastest of a quick probe. ``device`` None or
    "auto": CUDA when available. ``precision`` "bf16": autocast. ``compile``: torch.compile the
    model. ``threads``: torch threads for the call (None: torch's count as it stands; the commands
    decide one). ``bn_recompute``: re-estimate BatchNorm statistics from that many batches of
    ``bn_data`` (None: the data) at every point. ``forward_fn(model, batch) -> output`` for models
    that take more than the inputs."""

    loss_fn: str | Callable | None = None
    accuracy_fn: str | Callable | None = "auto"
    batch_size: int | None = None
    device: str | torch.device | None = None
    precision: str = "fp32"
    compile: bool = False
    threads: int | None = None
    bn_recompute: int = 0
    bn_data: object = None
    forward_fn: Callable = forward

    def __post_init__(self):
        if isinstance(self.loss_fn, str):
            check_choice("loss_fn", self.loss_fn, tuple(LOSSES))
        elif self.loss_fn is not None and not callable(self.loss_fn):
            raise LandscapeError(f"`loss_fn` must be a name or a function loss_fn(output, batch), got {self.loss_fn!r}")
        if not (self.accuracy_fn in (None, "auto") or callable(self.accuracy_fn)):
            raise LandscapeError(f"`accuracy_fn` must be a function, 'auto' or None, got {self.accuracy_fn!r}")
        if self.batch_size is not None and (not is_int(self.batch_size) or self.batch_size < 1):
            raise LandscapeError(f"`batch_size` must be a positive integer or None, got {self.batch_size!r}")
        resolve_device(self.device)  # one line naming the device when it is not one, or not here
        check_choice("precision", self.precision, PRECISIONS)
        if not isinstance(self.compile, bool):
            raise LandscapeError(f"`compile` must be True or False, got {self.compile!r}")
        if self.threads is not None and (not is_int(self.threads) or self.threads < 1):
            raise LandscapeError(f"`threads` must be a positive integer or None, got {self.threads!r}")
        if not is_int(self.bn_recompute) or self.bn_recompute < 0:
            raise LandscapeError(f"`bn_recompute` must be a non-negative number of batches, got {self.bn_recompute!r}")
        if not callable(self.forward_fn):
            raise LandscapeError(f"`forward_fn` must be a function forward_fn(model, batch), got {self.forward_fn!r}")
