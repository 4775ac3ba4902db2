"""Sharpness-aware minimization around any optimizer: :class:`SAM` (Foret et al., ICLR'21) and its
adaptive form ASAM (Kwon et al., ICML'21).

One step of ``SAM(base, rho)`` at weights ``w``, given ``closure()`` (zero the gradients, forward,
backward, return the loss: torch's closure protocol, as for ``LBFGS``)::

    g = closure()'s gradient at w
    e = rho * g / ||g||                       (the norm over all parameters with a gradient)
    ASAM: e = rho * T^2 g / ||T g||, T = |w| + eta elementwise (T = 1 for the ``unscaled`` ones)
    g' = closure()'s gradient at w + e
    w back (copied, not subtracted), then base.step() with g'

so the base optimizer's momentum, Nesterov, weight decay (taken at ``w``) and Adam moments are its
own. :meth:`state_dict` is the base optimizer's: a checkpoint of a SAM run resumes bit for bit and
holds nothing SAM-specific. The training loop (:class:`landscape.training.Loop`) hands every
optimizer such a closure and does not know SAM; it updates BatchNorm statistics on the first
evaluation of each step only.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable

import torch

from landscape.errors import LandscapeError


class SAM(torch.optim.Optimizer):
    """``base`` stepping with the gradient at ``w + e`` (see the module docstring). ``adaptive``:
    ASAM's elementwise scaling with ``eta``; ``unscaled``: parameters whose scaling stays 1 (ASAM's
    code leaves the biases so)."""

    def __init__(self, base: torch.optim.Optimizer, rho: float = 0.05, adaptive: bool = False, eta: float = 0.01,
                 unscaled: Iterable[torch.Tensor] = ()):
        if not rho > 0:
            raise LandscapeError(f"`sam` must be a positive radius rho, got {rho}")
        if not eta >= 0:
            raise LandscapeError(f"`eta` must be >= 0, got {eta}")
        self.base = base
        self.rho, self.adaptive, self.eta = float(rho), bool(adaptive), float(eta)
        self.unscaled = {id(p) for p in unscaled}
        super().__init__(base.param_groups, {})  # no defaults: the groups are the base's, left as they are
        self.param_groups = base.param_groups

    def _perturbation(self, params: list[torch.Tensor]) -> list[torch.Tensor]:
        grads = [p.grad for p in params]
        if self.adaptive:
            scale = [torch.ones_like(p) if id(p) in self.unscaled else p.abs().add_(self.eta) for p in params]
            scaled = torch._foreach_mul(grads, scale)  # T g
            norm = torch.linalg.vector_norm(torch.stack(torch._foreach_norm(scaled)))
            e = torch._foreach_mul(scaled, scale)  # T^2 g
        else:
            norm = torch.linalg.vector_norm(torch.stack(torch._foreach_norm(grads)))
            e = [g.clone() for g in grads]
        if norm > 0:
            torch._foreach_mul_(e, (self.rho / norm).to(e[0].dtype))
        else:  # a zero gradient: nothing to climb
            torch._foreach_zero_(e)
        return e

    @torch.no_grad()
    def step(self, closure: Callable[[], torch.Tensor] | None = None):
        """One SAM step; ``closure`` is called twice. Returns the loss at ``w`` (the first call's)."""
        if closure is None:
            raise LandscapeError("SAM evaluates the loss twice per step: its step needs a closure (zero the gradients, "
                                 "forward, backward, return the loss); a GradScaler (amp on CUDA) gives none")
        with torch.enable_grad():
            loss = closure()
        params = [p for group in self.param_groups for p in group["params"] if p.grad is not None]
        if params:
            w = [p.detach().clone() for p in params]
            torch._foreach_add_(params, self._perturbation(params))
            with torch.enable_grad():
                closure()
            torch._foreach_copy_(params, w)  # w itself: (w + e) - e is not w in floating point
        self.base.step()
        return loss

    def zero_grad(self, set_to_none: bool = True) -> None:
        self.base.zero_grad(set_to_none=set_to_none)

    def state_dict(self) -> dict:
        return self.base.state_dict()

    def load_state_dict(self, state_dict: dict) -> None:
        self.base.load_state_dict(state_dict)
        self.param_groups = self.base.param_groups  # torch replaces the groups: a schedule must reach the new ones

    def __repr__(self) -> str:
        kind = f"ASAM (eta {self.eta:g})" if self.adaptive else "SAM"
        return f"{kind}(rho={self.rho:g}, {self.base!r})"


__all__ = ["SAM"]
