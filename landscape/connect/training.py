"""Training a curve's bend (Garipov et al.): t ~ U[0, 1] at every batch, the network run at theta(t),
only the bend stepped, through the training loop and its run folder.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field

import torch
from torch import nn

from landscape.connect.curve import Curve, CurveModel
from landscape.errors import LandscapeError
from landscape.runtime.device import resolve_device
from landscape.space.params import tensors_checksum
from landscape.training import Loop, LoopConfig, OptimizerConfig, RunFolder, make_optimizer


def _bend_optimizer() -> OptimizerConfig:
    return OptimizerConfig(lr=0.05, nesterov=False, weight_decay=0.0)


@dataclass(frozen=True)
class CurveTraining:
    """How the bend is trained: the optimizer (:class:`landscape.training.OptimizerConfig`; here
    by default SGD, rate 0.05, momentum 0.9 without Nesterov's, no weight decay), epochs, batches
    and seed (checked as the training loop's :class:`~landscape.training.LoopConfig` checks them).
    The rate follows Garipov et al.'s schedule (:meth:`lr_at`): constant for half the epochs, then
    linearly down to ``optimizer.lr * final_lr`` at 90 %, constant after."""

    optimizer: OptimizerConfig = field(default_factory=_bend_optimizer)
    epochs: int = 20
    batch_size: int = 128
    seed: int = 0
    final_lr: float = 0.01

    def __post_init__(self):
        if not isinstance(self.optimizer, OptimizerConfig):
            raise LandscapeError(f"`optimizer` must be a landscape.training.OptimizerConfig, got {self.optimizer!r}")
        if self.optimizer.sam is not None:
            raise LandscapeError("a curve's bend cannot be trained with `sam`: every evaluation draws its own t, so "
                                 "SAM's two gradients of a step would be taken at two points of the curve")
        self.loop()  # the loop's own checks of epochs, batch size and seed
        if not (isinstance(self.final_lr, int | float) and 0 < self.final_lr <= 1):
            raise LandscapeError(f"`final_lr` must be in (0, 1], got {self.final_lr}")

    def loop(self, progress: bool = False) -> LoopConfig:
        """The training loop's settings: a checkpoint at the end only."""
        return LoopConfig(epochs=self.epochs, batch_size=self.batch_size, seed=self.seed, save_every=self.epochs,
                          progress=progress)

    def lr_at(self, epoch: int) -> float:
        """The rate of (1-based) ``epoch``: the training loop's schedule."""
        lr = self.optimizer.lr
        f = (epoch - 1) / self.epochs
        if f <= 0.5:
            return lr
        if f <= 0.9:
            return lr * (1.0 - (f - 0.5) / 0.4 * (1.0 - self.final_lr))
        return lr * self.final_lr

    def settings(self) -> dict:
        """The settings as plain values (recorded in the curve file and the run folder)."""
        o = self.optimizer
        return {"epochs": self.epochs, "lr": o.lr, "optimizer": o.name, "momentum": o.momentum,
                "weight_decay": o.weight_decay, "batch_size": self.batch_size, "final_lr": self.final_lr,
                "seed": self.seed, "nesterov": o.nesterov}


def train_curve(model_a: nn.Module, model_b: nn.Module, data, *, kind: str = "bezier",
                training: CurveTraining | None = None, loss_fn: str | Callable = "crossentropy",
                device: str | torch.device | None = "cpu", test_data=None, folder: str | os.PathLike | None = None,
                resume: bool = False, overwrite: bool = False, progress: bool = False,
                on_epoch_end: Callable[[int, dict], None] | None = None, meta: Mapping | None = None) -> Curve:
    """Train the bend of a ``kind`` curve from ``model_a`` to ``model_b`` (ends fixed) on ``data``
    (a Dataset, ``(X, y)``, a loader, or ``{"train": ...}``) with the project's training loop
    (:class:`landscape.training.Loop` on a :class:`CurveModel`) as ``training`` says (default
    :class:`CurveTraining`): every batch draws t ~ U[0, 1] and steps the bend on the loss at
    theta(t). The log's epoch 0 is the loss at t = 1/2 before training (the straight line's
    midpoint), ``test_data`` is evaluated there too. ``folder``: a run folder (checkpoints,
    ``log.csv``; continued bit for bit with ``resume`` after an interruption, even ``kill -9``).
    Returns the trained :class:`Curve`; its ``meta`` records the settings and the log."""
    settings = training if training is not None else CurveTraining()
    if not isinstance(settings, CurveTraining):
        raise LandscapeError(f"`training` must be a landscape.connect.CurveTraining, got {settings!r}")
    curve = Curve.between(model_a, model_b, kind, meta=meta)
    if isinstance(data, Mapping) and "train" in data:
        data = data["train"]
    net = CurveModel(curve).to(resolve_device(device))
    opt = make_optimizer(list(net.bend), settings.optimizer)
    record = {"kind": kind, "ends_tensors_checksum": [tensors_checksum(curve.a), tensors_checksum(curve.b)],
              "loss": loss_fn if isinstance(loss_fn, str) else "custom", **settings.settings()}
    run = RunFolder(folder, record, resume=resume, overwrite=overwrite) if folder is not None else None
    try:
        loop = Loop(net, data, opt, schedule=settings.lr_at, test_data=test_data, loss=loss_fn, folder=run,
                    config=settings.loop(progress))
        history = loop.run(on_epoch_end)
    finally:
        if run is not None:
            run.close()
    trained = net.curve(curve)
    trained.model = model_a
    trained.meta = {**curve.meta, "training": record, "history": history}
    return trained
