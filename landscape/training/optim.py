"""Optimizers by name and the step-decay learning-rate schedule of the original tool.

:data:`OPTIMIZERS` maps a name to ``make(params, config)``; ``config`` is any object with the
attributes ``lr``, ``momentum``, ``nesterov`` and ``weight_decay`` (``landscape-train`` passes its
``TrainConfig``). :class:`Milestones` is the learning rate of an epoch: ``lr`` decayed by
``decay`` once for every milestone already passed (150, 225, 275 of 300 by default).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import torch

from landscape.errors import LandscapeError
from landscape.models import call_user, load_callable


def _sgd(params, c) -> torch.optim.Optimizer:
    return torch.optim.SGD(params, lr=c.lr, momentum=c.momentum, weight_decay=c.weight_decay,
                           nesterov=c.nesterov and c.momentum > 0)


def _adam(params, c) -> torch.optim.Optimizer:
    return torch.optim.Adam(params, lr=c.lr, weight_decay=c.weight_decay)


OPTIMIZERS: dict[str, Callable[..., torch.optim.Optimizer]] = {"sgd": _sgd, "adam": _adam}


def make_optimizer(name: str, params, config) -> torch.optim.Optimizer:
    """The optimizer ``name`` (a key of :data:`OPTIMIZERS`, or ``package.module:callable`` called
    as ``callable(params, config)``) over ``params``."""
    make = OPTIMIZERS.get(name) or load_callable(name, "optimizer")
    opt = call_user(make, f"optimizer {name!r}", params, config)
    if not isinstance(opt, torch.optim.Optimizer):
        raise LandscapeError(f"optimizer {name!r} returned {type(opt).__name__}, not a torch.optim.Optimizer")
    return opt


def default_milestones(epochs: int) -> list[int]:
    """The original schedule's epochs after which the rate decays: 150, 225, 275 of 300."""
    marks = [math.floor(epochs * f + 0.5) for f in (1 / 2, 3 / 4, 11 / 12)]
    return sorted({m for m in marks if 0 < m < epochs})


@dataclass(frozen=True)
class Milestones:
    """Step decay: ``Milestones(0.1, 0.1, [150, 225])(epoch)`` is the rate of (1-based) ``epoch``."""

    lr: float
    decay: float = 0.1
    milestones: Sequence[int] = ()

    def __post_init__(self):
        if not (self.lr > 0 and math.isfinite(self.lr)):
            raise LandscapeError(f"`lr` must be positive, got {self.lr}")
        if not self.decay > 0:
            raise LandscapeError(f"`lr_decay` must be positive, got {self.decay}")
        object.__setattr__(self, "milestones", tuple(int(m) for m in self.milestones))

    def __call__(self, epoch: int) -> float:
        return self.lr * self.decay ** sum(1 for m in self.milestones if epoch > m)


__all__ = ["OPTIMIZERS", "Milestones", "default_milestones", "make_optimizer"]
