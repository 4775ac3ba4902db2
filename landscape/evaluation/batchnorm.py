"""Re-estimating BatchNorm running statistics at a point of parameter space.

Between two BatchNorm networks (linear interpolation, mode-connecting curves) the interpolated
running statistics are not those of the interpolated weights, and the loss along the path is
overestimated; re-estimating the statistics from training batches at every point is the fix
(Garipov et al. 2018; Draxler et al. 2018). :class:`BatchNormRecompute` does it in place.
"""

from __future__ import annotations

import torch
from torch import nn

from landscape.data.batches import Batches, forward

_BN = nn.modules.batchnorm._BatchNorm


def has_batchnorm(model: nn.Module) -> bool:
    return any(isinstance(m, _BN) for m in model.modules())


class BatchNormRecompute:
    """Reset every BatchNorm layer's running statistics and re-estimate them as the exact mean
    over the first ``num_batches`` batches of ``batches`` (train-mode forward passes, no
    gradients), then put the model back in eval mode. :meth:`restore_` puts the statistics the
    model had when this object was built back."""

    def __init__(self, model: nn.Module, batches: Batches, num_batches: int, forward_fn=forward):
        self.model, self.batches, self.num_batches, self.forward_fn = model, batches, int(num_batches), forward_fn
        self.layers = [m for m in model.modules() if isinstance(m, _BN) and m.track_running_stats]
        self._saved = [(m.running_mean.clone(), m.running_var.clone(), m.num_batches_tracked.clone(), m.momentum)
                       for m in self.layers]

    def config(self) -> dict:
        return {"num_batches": self.num_batches, "data": self.batches.fingerprint()}

    @torch.no_grad()
    def __call__(self) -> None:
        for m in self.layers:
            m.reset_running_stats()
            m.momentum = None  # a cumulative average: the exact mean over the batches seen
        self.model.train()
        try:
            for k, (batch, _) in enumerate(self.batches):
                if k >= self.num_batches:
                    break
                self.forward_fn(self.model, batch)
        finally:
            self.model.eval()
            for m, (*_, momentum) in zip(self.layers, self._saved, strict=True):
                m.momentum = momentum

    @torch.no_grad()
    def restore_(self) -> None:
        for m, (mean, var, tracked, momentum) in zip(self.layers, self._saved, strict=True):
            m.running_mean.copy_(mean)
            m.running_var.copy_(var)
            m.num_batches_tracked.copy_(tracked)
            m.momentum = momentum
