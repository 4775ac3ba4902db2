"""Knowledge distillation (Hinton, Vinyals, Dean, *Distilling the Knowledge in a Neural Network*,
2015) as a training objective: ``Distillation(temperature=T, alpha=A).loss(teacher)``.

For student logits ``s``, teacher logits ``t`` and labels ``y``::

    A * T^2 * KL(softmax(t / T) || softmax(s / T))  (summed over classes, mean over the batch)
      + (1 - A) * CE(s, y)

The teacher runs in eval mode without gradients on the same batch as the student (augmented
inputs included); T^2 keeps the soft term's gradients on the scale of the hard one's as T changes.
Pass the loss as the loop's ``objective`` (:class:`landscape.training.Loop`): the loop's own
``loss`` (cross-entropy) still scores the epochs and the test data.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from landscape.errors import LandscapeError
from landscape.evaluation.losses import LossFn, logits_of, target


@dataclass(frozen=True)
class Distillation:
    """The distillation objective's settings: the temperature ``T`` (> 0) and the weight ``alpha``
    of the soft targets (0: cross-entropy alone, 1: the teacher alone)."""

    temperature: float = 4.0
    alpha: float = 0.9

    def __post_init__(self):
        t, a = self.temperature, self.alpha
        if isinstance(t, bool) or not isinstance(t, int | float) or not (math.isfinite(t) and t > 0):
            raise LandscapeError(f"`temperature` must be a positive number, got {t!r}")
        if isinstance(a, bool) or not isinstance(a, int | float) or not 0 <= a <= 1:
            raise LandscapeError(f"`alpha` must be in [0, 1], got {a!r}")

    def loss(self, teacher: nn.Module) -> LossFn:
        """The objective ``loss_fn(output, batch)`` with ``teacher`` (put in eval mode, frozen)."""
        teacher.eval()
        for p in teacher.parameters():
            p.requires_grad_(False)
        T, alpha = float(self.temperature), float(self.alpha)

        def distillation_loss(output, batch) -> torch.Tensor:
            student = logits_of(output).float()
            with torch.no_grad():
                soft = F.log_softmax(logits_of(teacher(batch[0])).float() / T, dim=1)
            kl = F.kl_div(F.log_softmax(student / T, dim=1), soft, reduction="batchmean", log_target=True)
            return alpha * T * T * kl + (1.0 - alpha) * F.cross_entropy(student, target(batch))

        return distillation_loss


__all__ = ["Distillation"]
