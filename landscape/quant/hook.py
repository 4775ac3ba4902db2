"""The update rules of quantized training as :class:`landscape.training.TrainHook` s, and ``quantize_``.

``quantize_(model, QuantConfig(method, bits, ...))`` picks the conv and linear weights to
quantize, sets each one's grid from its initial weights, writes the quantized weights into the
model in place and returns the hook that keeps them quantized while training:

- :class:`BinaryConnect` (``"bc"``): keeps full-precision weights ``w_r``; the parameters hold
  ``Q_d(w_r)`` for the forward and backward passes (and evaluation); ``after_backward`` puts
  ``w_r`` back in the parameters (the gradients, taken at ``Q_d(w_r)``, stay), the optimizer steps
  them, ``after_step`` clips them to the grid's range into ``w_r`` and writes ``Q_d(w_r)`` back.
- :class:`Rounding` (``"r"``: Q_d, ``"sr"``: Q_s): only quantized weights exist; the optimizer
  steps them and ``after_step`` rounds: ``w <- Q(w - step)``. The rounding is done in code space
  (``code + (new - old) / delta``), so a zero step leaves a weight exactly where it is and a tiny
  step moves it with a probability of exactly ``|step| / delta`` under Q_s. Q_s draws from the
  hook's own ``torch.Generator``, whose state travels in the checkpoints.

The optimizer (SGD, Adam, ...) and its state stay full precision. With ``step="unit"`` (the
default) the optimizer sees each quantized layer's weights divided by the layer's scale R
(binary weights are then the paper's +-1) and the gradient multiplied by R, the exact gradient
for those normalized weights; the network itself always runs with the weights in their own units.
All per-step work is a few fused ``torch._foreach_*`` operations over the quantized tensors.
Each step takes one gradient, at the quantized weights: a second ``after_backward`` before
``after_step`` (an optimizer that evaluates the loss twice per step, SAM) is refused.

The model's state dict keeps its keys; what a checkpoint adds: ``"quant"`` (method, bits, the
layers quantized, each one's spacing and scale, the fraction of weights changed) and, for BC,
``"full_precision"`` (``w_r`` by parameter name). The log gains the column ``quant_changed``: the
fraction of quantized weights whose level differs from the one they had at the start.
"""

from __future__ import annotations

import torch
from torch import nn

from landscape.errors import LandscapeError
from landscape.quant.config import METHODS, QuantConfig
from landscape.quant.quantizer import Levels, round_nearest, round_stochastic, scale_of
from landscape.training.hooks import TrainHook, hook_key

CHANGED_COLUMN = "quant_changed"
FULL_PRECISION_KEY = "full_precision"


def quantized_layers(model: nn.Module, keep: str = "none") -> list[tuple[str, nn.Parameter]]:
    """The weights that quantization acts on: every conv and linear layer's ``weight`` (by its
    state-dict name, in the order the model registers the layers), without the first and/or last
    layer when ``keep`` says so. Biases and BatchNorm parameters are never included."""
    found: list[tuple[str, nn.Parameter]] = []
    seen: set[int] = set()
    for name, module in model.named_modules():
        if isinstance(module, nn.Linear | nn.modules.conv._ConvNd):
            w = getattr(module, "weight", None)
            if isinstance(w, nn.Parameter) and id(w) not in seen:
                seen.add(id(w))
                found.append((f"{name}.weight" if name else "weight", w))
    parts = set(keep.split(",")) if keep else set()
    if "first" in parts:
        found = found[1:]
    if "last" in parts:
        found = found[:-1]
    return found


class QuantHook(TrainHook):
    """What BC and R/SR share: the layers, their grids, the change count, the checkpoint entries."""

    name = "quant"

    def __init__(self, model: nn.Module, config: QuantConfig):
        self.quant = config
        chosen = quantized_layers(model, config.keep)
        if not chosen:
            raise LandscapeError(f"nothing to quantize: the model has no conv or linear weight left with "
                                 f"`quant_keep` {config.keep}")
        self.names = [n for n, _ in chosen]
        self.params = [p for _, p in chosen]
        self.device = self.params[0].device
        try:
            scales = [scale_of(p, config.scale, config.bits) for p in self.params]
        except ValueError as exc:
            raise LandscapeError(str(exc)) from None
        self._set_grids(scales)
        self.generator: torch.Generator | None = None
        self.init_codes: list[torch.Tensor] = []
        self._stepping = False  # a gradient was taken and the optimizer has not stepped yet

    # -- grids -----------------------------------------------------------------------------

    def _set_grids(self, scales: list[float]) -> None:
        bits = self.quant.bits
        self.grids = [Levels.symmetric(bits, s) for s in scales]
        self.scales = [float(s) for s in scales]
        self.delta = [g.delta for g in self.grids]
        self.low, self.high = self.grids[0].low, self.grids[0].high
        # the optimizer's units: weights / R ("unit") or the weights themselves ("raw")
        self.unit = list(self.scales) if self.quant.step == "unit" else [1.0] * len(scales)
        self.opt_delta = [d / u for d, u in zip(self.delta, self.unit, strict=True)]
        self.neg_scales = [-s for s in self.scales]
        self.scaled = self.quant.step == "unit"

    def codes(self) -> list[torch.Tensor]:
        """The current level index of every quantized weight (the parameters hold levels)."""
        with torch.no_grad():
            out = torch._foreach_div(self.params, self.delta)
            torch._foreach_floor_(out)
            torch._foreach_clamp_min_(out, float(self.low))
            torch._foreach_clamp_max_(out, float(self.high))
        return out

    def _write_levels_(self, codes: list[torch.Tensor]) -> None:
        """parameters <- (codes + 1/2) * delta, in place (``codes`` is consumed)."""
        torch._foreach_add_(codes, 0.5)
        torch._foreach_mul_(codes, self.delta)
        torch._foreach_copy_(self.params, codes)

    def _grads_times_unit_(self) -> None:
        if not self.scaled:
            return
        pairs = [(p.grad, u) for p, u in zip(self.params, self.unit, strict=True) if p.grad is not None]
        if pairs:
            torch._foreach_mul_([g for g, _ in pairs], [u for _, u in pairs])

    def _one_gradient(self) -> None:
        """The update rules take one gradient per step (at the quantized weights); a second one
        would be taken at weights the rules have already replaced by their full-precision copy."""
        if self._stepping:
            raise LandscapeError("quantized training takes one gradient per optimizer step: an optimizer that "
                                 "evaluates the loss again within a step (SAM) cannot be combined with it")
        self._stepping = True

    def _remember_start(self) -> None:
        self.init_codes = [c.to(torch.int8) for c in self.codes()]

    # -- measures and records ----------------------------------------------------------------

    def changed(self) -> float:
        """Fraction of the quantized weights whose level differs from their level at the start."""
        now = self.codes()
        diff = sum(int((c != s.to(c.device, c.dtype)).sum()) for c, s in zip(now, self.init_codes, strict=True))
        return diff / max(1, sum(p.numel() for p in self.params))

    def describe(self) -> dict:
        """What a checkpoint records under ``"quant"`` (plain Python types)."""
        c = self.quant
        return {
            "method": c.method, "name": METHODS[c.method], "bits": c.bits, "levels": 2 ** c.bits,
            "scale_rule": c.scale, "step": c.step, "keep": c.keep,
            "layers": list(self.names),
            "spacing": dict(zip(self.names, self.delta, strict=True)),
            "scale": dict(zip(self.names, self.scales, strict=True)),
            "changed": self.changed(),
        }

    def config(self) -> dict:
        """The settings a resumed run must share (checked by the loop)."""
        c = self.quant
        return {"method": c.method, "bits": c.bits, "scale": c.scale, "keep": c.keep, "step": c.step, "seed": c.seed}

    def on_epoch_end(self, loop, epoch: int, row: dict) -> None:
        row[CHANGED_COLUMN] = self.changed()

    def on_checkpoint(self, loop, state: dict) -> None:
        state["quant"] = self.describe()

    def state_dict(self) -> dict:
        c = self.quant
        state = {"method": c.method, "bits": c.bits, "step": c.step, "layers": list(self.names),
                 "scale": list(self.scales), "init_codes": [t.cpu().clone() for t in self.init_codes]}
        if self.generator is not None:
            state["generator"] = self.generator.get_state()
        return state

    def load_state_dict(self, state: dict) -> None:
        c = self.quant
        saved = (state.get("method"), state.get("bits"), state.get("step"), state.get("layers"))
        if saved != (c.method, c.bits, c.step, self.names):
            raise LandscapeError(
                f"cannot resume: the checkpoint was trained with quantization {saved[:3]} on "
                f"{len(saved[3] or [])} layers, this run asks for {(c.method, c.bits, c.step)} on "
                f"{len(self.names)} layers")
        self._set_grids([float(s) for s in state["scale"]])
        self.init_codes = [t.to(self.device) for t in state["init_codes"]]
        if self.generator is not None:
            self.generator.set_state(state["generator"])


class BinaryConnect(QuantHook):
    """BC: ``w_b = Q_d(w_r)``; the gradient at ``w_b`` updates ``w_r``; ``w_r`` stays in the grid's
    range. The full-precision ``w_r`` are in :attr:`real` (the network's units)."""

    def __init__(self, model: nn.Module, config: QuantConfig):
        super().__init__(model, config)
        with torch.no_grad():
            # BinaryConnect's start: the initial weights clipped into the grid's range
            self.real = [p.detach().clone() for p in self.params]
            torch._foreach_clamp_min_(self.real, self.neg_scales)
            torch._foreach_clamp_max_(self.real, self.scales)
            for p, w, g in zip(self.params, self.real, self.grids, strict=True):
                p.copy_(round_nearest(w, g))
        self._remember_start()

    def after_backward(self, loop) -> None:
        self._one_gradient()
        with torch.no_grad():
            torch._foreach_copy_(self.params, self.real)
            if self.scaled:
                torch._foreach_div_(self.params, self.unit)
            self._grads_times_unit_()

    def after_step(self, loop) -> None:
        self._stepping = False
        with torch.no_grad():
            p = self.params
            if self.scaled:
                torch._foreach_mul_(p, self.unit)
            torch._foreach_clamp_min_(p, self.neg_scales)
            torch._foreach_clamp_max_(p, self.scales)
            torch._foreach_copy_(self.real, p)
            q = torch._foreach_div(p, self.delta)
            torch._foreach_floor_(q)
            torch._foreach_clamp_min_(q, float(self.low))
            torch._foreach_clamp_max_(q, float(self.high))
            self._write_levels_(q)

    def full_precision(self) -> dict[str, torch.Tensor]:
        """``w_r`` by parameter name (copies on the CPU)."""
        return {n: w.detach().cpu().clone() for n, w in zip(self.names, self.real, strict=True)}

    def state_dict(self) -> dict:
        state = super().state_dict()
        state[FULL_PRECISION_KEY] = self.full_precision()
        return state

    def load_state_dict(self, state: dict) -> None:
        super().load_state_dict(state)
        saved = state[FULL_PRECISION_KEY]
        with torch.no_grad():
            for n, w in zip(self.names, self.real, strict=True):
                w.copy_(saved[n])

    def on_checkpoint(self, loop, state: dict) -> None:
        super().on_checkpoint(loop, state)
        state["quant"]["full_precision_key"] = FULL_PRECISION_KEY
        mine = None
        for k, h in enumerate(getattr(loop, "hooks", [])):
            if h is self:
                mine = state.get("hooks", {}).get(hook_key(k, self))
        # the same tensors as in the hook's state: torch.save stores them once
        state[FULL_PRECISION_KEY] = mine[FULL_PRECISION_KEY] if mine else self.full_precision()


class Rounding(QuantHook):
    """R (``stochastic=False``: Q_d) and SR (``stochastic=True``: Q_s): ``w <- Q(w - step)``."""

    def __init__(self, model: nn.Module, config: QuantConfig):
        super().__init__(model, config)
        self.stochastic = config.method == "sr"
        if self.stochastic:
            self.generator = torch.Generator(device=self.device)
            self.generator.manual_seed(0x5EED_0000 + int(config.seed))
        with torch.no_grad():
            for p, g in zip(self.params, self.grids, strict=True):
                p.copy_(round_stochastic(p, g, self.generator) if self.stochastic else round_nearest(p, g))
        self._remember_start()
        self._codes: list[torch.Tensor] | None = None
        self._sizes = [p.numel() for p in self.params]

    def after_backward(self, loop) -> None:
        self._one_gradient()
        with torch.no_grad():
            self._codes = self.codes()
            if self.scaled:  # the optimizer steps the levels in units of R
                u = torch._foreach_add(self._codes, 0.5)
                torch._foreach_mul_(u, self.opt_delta)
                torch._foreach_copy_(self.params, u)
            self._grads_times_unit_()

    def after_step(self, loop) -> None:
        self._stepping = False
        codes = self._codes
        if codes is None:
            raise RuntimeError("Rounding.after_step needs after_backward first (it records the levels "
                               "the optimizer starts from)")
        with torch.no_grad():
            old = torch._foreach_add(codes, 0.5)
            torch._foreach_mul_(old, self.opt_delta)
            x = torch._foreach_sub(self.params, old)  # -step, in the optimizer's units
            torch._foreach_div_(x, self.opt_delta)
            torch._foreach_add_(x, codes)  # the new position in code space
            if self.stochastic:
                torch._foreach_clamp_min_(x, float(self.low))
                torch._foreach_clamp_max_(x, float(self.high))
                flat = torch.rand(sum(self._sizes), generator=self.generator, device=self.device)
                draws = [d.view(t.shape) for d, t in zip(flat.split(self._sizes), x, strict=True)]
                torch._foreach_add_(x, draws)  # floor(x + U) is floor(x) + 1 with probability frac(x)
                torch._foreach_floor_(x)
            else:
                torch._foreach_add_(x, 0.5)
                torch._foreach_floor_(x)
            torch._foreach_clamp_min_(x, float(self.low))
            torch._foreach_clamp_max_(x, float(self.high))
            self._write_levels_(x)
        self._codes = None


def quantize_(model: nn.Module, config: QuantConfig | None = None) -> QuantHook:
    """Quantize ``model``'s conv and linear weights in place and return the training hook.

    The state-dict keys do not change. Pass the hook to :class:`landscape.training.Loop`
    (``hooks=[hook]``), or call its ``after_backward(None)`` and ``after_step(None)`` around the
    optimizer step of a loop of your own (docs/training.md); ``landscape-train --quant`` does the
    same.
    """
    config = config or QuantConfig()
    return BinaryConnect(model, config) if config.method == "bc" else Rounding(model, config)


__all__ = ["CHANGED_COLUMN", "FULL_PRECISION_KEY", "BinaryConnect", "QuantHook", "Rounding",
           "quantize_", "quantized_layers"]
