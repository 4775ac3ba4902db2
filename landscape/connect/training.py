"""Training a curve's bend (Garipov et al.): t ~ U[0, 1] at every batch, the network run at theta(t),
only the bend stepped, through the training loop and its run folder.
"""

from __future__ import annotations

import math
import os
from collections.abc import Callable, Mapping
from dataclasses import dataclass

import torch
from torch import nn

from landscape.connect.curve import Curve, CurveModel
from landscape.errors import LandscapeError
from landscape.runtime.device import resolve_device
from landscape.space.params import tensors_checksum
from landscape.training import OPTIMIZERS, Loop, LoopConfig, RunFolder, make_optimizer


@dataclass(frozen=True)
class CurveTraining:
    """How the bend is trained: the optimizer (a name of :data:`landscape.training.OPTIMIZERS`,
    ``sgd`` or ``adam``, or ``package.module:callable``), its rate, momentum and weight decay,
    batches, epochs and seed. The rate follows Garipov et al.'s schedule (:meth:`lr_at`):
    constant for half the epochs, then linearly down to ``lr * final_lr`` at 90 %, constant after."""

    epochs: int = 20
    lr: float = 0.05
    optimizer: str = "sgd"
    momentum: float = 0.9
    weight_decay: float = 0.0
    batch_size: int = 128
    final_lr: float = 0.01
    seed: int = 0
    nesterov: bool = False

    def __post_init__(self):
        checks = [(self.epochs >= 1, f"`epochs` must be positive, got {self.epochs}"),
                  (self.lr > 0 and math.isfinite(self.lr), f"`lr` must be positive, got {self.lr}"),
                  (self.optimizer in OPTIMIZERS or ":" in self.optimizer,
                   f"`optimizer` must be one of {', '.join(OPTIMIZERS)} or package.module:callable, "
                   f"got {self.optimizer!r}"),
                  (self.momentum >= 0, f"`momentum` must be >= 0, got {self.momentum}"),
                  (self.weight_decay >= 0, f"`weight_decay` must be >= 0, got {self.weight_decay}"),
                  (self.batch_size >= 1, f"`batch_size` must be positive, got {self.batch_size}"),
                  (0 < self.final_lr <= 1, f"`final_lr` must be in (0, 1], got {self.final_lr}")]
        for ok, message in checks:
            if not ok:
                raise LandscapeError(message)

    def lr_at(self, epoch: int) -> float:
        """The rate of (1-based) ``epoch``: the training loop's schedule."""
        f = (epoch - 1) / self.epochs
        if f <= 0.5:
            return self.lr
        if f <= 0.9:
            return self.lr * (1.0 - (f - 0.5) / 0.4 * (1.0 - self.final_lr))
        return self.lr * self.final_lr

    def settings(self) -> dict:
        """The settings as plain values (recorded in the curve file and the run folder)."""
        return dict(self.__dict__)


def train_curve(model_a: nn.Module, model_b: nn.Module, data, *, kind: str = "bezier", epochs: int = 20,
                lr: float = 0.05, optimizer: str = "sgd", momentum: float = 0.9, weight_decay: float = 0.0,
                batch_size: int = 128, seed: int = 0, loss_fn: str | Callable = "crossentropy",
                device: str | torch.device | None = "cpu", test_data=None, folder: str | os.PathLike | None = None,
                resume: bool = False, overwrite: bool = False, progress: bool = False,
                on_epoch_end: Callable[[int, dict], None] | None = None, meta: Mapping | None = None) -> Curve:
    """Train the bend of a ``kind`` curve from ``model_a`` to ``model_b`` (ends fixed) on ``data``
    (a Dataset, ``(X, y)``, a loader, or ``{"train": ...}``) with the project's training loop
    (:class:`landscape.training.Loop` on a :class:`CurveModel`): every batch draws t ~ U[0, 1] and
    steps the bend on the loss at theta(t). The log's epoch 0 is the loss at t = 1/2 before training
    (the straight line's midpoint), ``test_data`` is evaluated there too. ``folder``: a run folder
    (checkpoints, ``log.csv``; continued bit for bit with ``resume`` after an interruption, even
    ``kill -9``). Returns the trained :class:`Curve`; its ``meta`` records the settings and the log."""
    settings = CurveTraining(epochs, lr, optimizer, momentum, weight_decay, batch_size, seed=seed)
    curve = Curve.between(model_a, model_b, kind, meta=meta)
    if isinstance(data, Mapping) and "train" in data:
        data = data["train"]
    net = CurveModel(curve).to(resolve_device(device))
    opt = make_optimizer(optimizer, list(net.bend), settings)
    record = {"kind": kind, "ends_tensors_sha256": [tensors_checksum(curve.a), tensors_checksum(curve.b)],
              "loss": loss_fn if isinstance(loss_fn, str) else "custom", **settings.settings()}
    run = RunFolder(folder, record, resume=resume, overwrite=overwrite) if folder is not None else None
    try:
        loop = Loop(net, data, opt, schedule=settings.lr_at, test_data=test_data, loss=loss_fn, folder=run,
                    config=LoopConfig(epochs=epochs, batch_size=batch_size, seed=seed, save_every=epochs,
                                      progress=progress))
        history = loop.run(on_epoch_end)
    finally:
        if run is not None:
            run.close()
    trained = net.curve(curve)
    trained.model = model_a
    trained.meta = {**curve.meta, "training": record, "history": history}
    return trained
