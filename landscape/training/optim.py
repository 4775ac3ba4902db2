"""The optimizer of a training run, declared once: :class:`OptimizerConfig` (``landscape-train`` and
curve training compose it), optimizers by name, and the original tool's step-decay schedule.

:data:`OPTIMIZERS` maps a name to ``make(params, config)``; ``config`` is the
:class:`OptimizerConfig` (its ``lr``, ``momentum``, ``nesterov``, ``weight_decay``), which a
``package.module:callable(params, config)`` receives too. With ``sam`` the optimizer is wrapped in
:class:`~landscape.training.sam.SAM` (sharpness-aware minimization; ASAM with ``sam_adaptive``).
:class:`Milestones` is the learning rate of an epoch: ``lr`` decayed by ``decay`` once for every
milestone already passed (150, 225, 275 of 300 by default).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass

import torch
from torch import nn

from landscape.errors import LandscapeError
from landscape.models import call_user, load_callable
from landscape.training.sam import SAM


def _sgd(params, c) -> torch.optim.Optimizer:
    return torch.optim.SGD(params, lr=c.lr, momentum=c.momentum, weight_decay=c.weight_decay,
                           nesterov=c.nesterov and c.momentum > 0)


def _adam(params, c) -> torch.optim.Optimizer:
    return torch.optim.Adam(params, lr=c.lr, weight_decay=c.weight_decay)


OPTIMIZERS: dict[str, Callable[..., torch.optim.Optimizer]] = {"sgd": _sgd, "adam": _adam}


def _number(value) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value)


@dataclass(frozen=True)
class OptimizerConfig:
    """The optimizer: ``name`` (``sgd``: SGD with momentum, Nesterov's with ``nesterov``; ``adam``;
    or ``package.module:callable(params, config)``), its learning rate, momentum and (coupled, L2)
    weight decay; ``sam``: the radius rho of sharpness-aware minimization around it (None: plain
    steps), ``sam_adaptive``: ASAM's elementwise scaling of that radius.

    The defaults are ``landscape-train``'s (the original tool's recipe); curve training composes
    its own (``lr`` 0.05, no Nesterov, no weight decay)."""

    name: str = "sgd"
    lr: float = 0.1
    momentum: float = 0.9
    nesterov: bool = True
    weight_decay: float = 5e-4
    sam: float | None = None
    sam_adaptive: bool = False

    def __post_init__(self):
        checks = [
            (isinstance(self.name, str) and (self.name in OPTIMIZERS or ":" in self.name),
             f"`optimizer` must be one of {', '.join(OPTIMIZERS)} or package.module:callable, got {self.name!r}"),
            (_number(self.lr) and self.lr > 0, f"`lr` must be positive, got {self.lr}"),
            (_number(self.momentum) and self.momentum >= 0, f"`momentum` must be >= 0, got {self.momentum}"),
            (isinstance(self.nesterov, bool), f"`nesterov` must be True or False, got {self.nesterov!r}"),
            (_number(self.weight_decay) and self.weight_decay >= 0,
             f"`weight_decay` must be >= 0, got {self.weight_decay}"),
            (self.sam is None or (_number(self.sam) and self.sam > 0),
             f"`sam` must be a positive radius rho, got {self.sam}"),
            (isinstance(self.sam_adaptive, bool), f"`sam_adaptive` must be True or False, got {self.sam_adaptive!r}"),
            (self.sam is not None or not self.sam_adaptive, "`sam_adaptive` (ASAM) needs `sam` (its radius rho)"),
        ]
        for ok, message in checks:
            if not ok:
                raise LandscapeError(message)


def make_optimizer(params: nn.Module | Iterable[torch.Tensor], config: OptimizerConfig) -> torch.optim.Optimizer:
    """The optimizer ``config`` describes over ``params`` (a model's parameters, or the given
    ones), with a :class:`SAM` around it when ``config.sam`` is set; ASAM leaves a model's biases
    unscaled, as its authors' code does."""
    unscaled: list[torch.Tensor] = []
    if isinstance(params, nn.Module):
        unscaled = [p for n, p in params.named_parameters() if n.rsplit(".", 1)[-1] == "bias"]
        params = params.parameters()
    params = list(params)
    make = OPTIMIZERS.get(config.name) or load_callable(config.name, "optimizer")
    opt = call_user(make, f"optimizer {config.name!r}", params, config)
    if not isinstance(opt, torch.optim.Optimizer):
        raise LandscapeError(f"optimizer {config.name!r} returned {type(opt).__name__}, not a torch.optim.Optimizer")
    if config.sam is not None:
        opt = SAM(opt, rho=config.sam, adaptive=config.sam_adaptive, unscaled=unscaled)
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
        if any(int(m) <= 0 for m in self.milestones):
            raise LandscapeError(f"`milestones` must be positive epochs, got {list(self.milestones)}")
        object.__setattr__(self, "milestones", tuple(int(m) for m in self.milestones))

    def __call__(self, epoch: int) -> float:
        return self.lr * self.decay ** sum(1 for m in self.milestones if epoch > m)


__all__ = ["OPTIMIZERS", "Milestones", "OptimizerConfig", "default_milestones", "make_optimizer"]
