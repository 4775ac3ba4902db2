"""Perturbations of a minimizer: the options a measure takes (its :class:`Directions` and
:class:`EvalOptions`, checked), the per-coordinate scale of a normalization, random draws, moving the
model in place and putting it back.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from contextlib import contextmanager
from dataclasses import replace

import numpy as np
import torch
from torch import nn

from landscape.directions.options import Directions
from landscape.directions.sampling import normalize_, random_direction
from landscape.errors import LandscapeError
from landscape.evaluation.evaluator import DEFAULT_BATCH_SIZE, Evaluator
from landscape.evaluation.options import EvalOptions
from landscape.runtime.parallel import world
from landscape.space.params import Mover, snapshot

NORMS = ("filter", "elementwise", "none")  # the normalizations a perturbation of a measure takes


def check_radius(radius: float, what: str = "radius") -> float:
    try:
        r = float(radius)
    except (TypeError, ValueError):
        raise LandscapeError(f"{what} must be a positive number, got {radius!r}") from None
    if not (r > 0) or math.isinf(r):
        raise LandscapeError(f"{what} must be a positive number, got {radius!r}")
    return r


def check_p(p) -> int | str:
    if p in (2, "2"):
        return 2
    if p in ("inf", float("inf")):
        return "inf"
    raise LandscapeError(f"p must be 2 or 'inf', got {p!r}")


def check_count(value, what: str) -> int:
    """A whole number of at least 1 (steps, restarts, samples, m)."""
    if isinstance(value, bool) or not isinstance(value, int | np.integer) or value < 1:
        raise LandscapeError(f"{what} must be a whole number of at least 1, got {value!r}")
    return int(value)


def check_directions(directions: Directions | None, measure: str) -> Directions:
    """The perturbation's :class:`Directions` (None: the surfaces' default, filter normalization):
    a measure draws its own perturbations, so of a ``Directions`` it takes ``norm`` (one of
    :data:`NORMS`), ``ignore`` and ``seed``; the surface-only fields must stay at their defaults."""
    if directions is None:
        return Directions()
    if not isinstance(directions, Directions):
        raise LandscapeError(f"{measure}: `directions` must be a landscape.Directions, got {type(directions).__name__}")
    if not isinstance(directions.norm, str) or not isinstance(directions.ignore, str):
        raise LandscapeError(f"{measure}: one norm and one ignore rule, not one per axis")
    if directions.norm not in NORMS:
        raise LandscapeError(f"{measure}: norm must be one of {', '.join(NORMS)}, got {directions.norm!r}")
    surface_only = {"tensors": None, "dir_type": "weights", "semantics": "landscape", "hold": False}
    for name, default in surface_only.items():
        if getattr(directions, name) != default:
            raise LandscapeError(f"{measure} draws its own perturbations from `norm`, `ignore` and `seed`: "
                                 f"`{name}` is a surface option (leave it at {default!r})")
    return directions


def check_evaluation(evaluation: EvalOptions | None, measure: str, gradients: bool) -> EvalOptions:
    """The measure's :class:`EvalOptions`: its loss, batch size (None: 256, not probed: a gradient
    needs more memory than the probe's forward pass), device (None: where the model is), forward
    function and, for a measure without gradients, precision and compile. No BatchNorm
    recomputation: a measure perturbs the minimizer as it stands."""
    evaluation = EvalOptions() if evaluation is None else evaluation
    if not isinstance(evaluation, EvalOptions):
        raise LandscapeError(f"{measure}: `evaluation` must be a landscape.EvalOptions, got "
                             f"{type(evaluation).__name__}")
    if evaluation.bn_recompute or evaluation.bn_data is not None:
        raise LandscapeError(f"{measure} does not recompute BatchNorm statistics: leave `bn_recompute` at 0")
    if gradients and (evaluation.precision != "fp32" or evaluation.compile):
        raise LandscapeError(f"{measure} differentiates the loss in float32: leave `precision` at 'fp32' and "
                             "`compile` False")
    return evaluation


def one_split(data):
    """A mapping of splits gives its ``train`` split (or its only one); anything else is the data."""
    if isinstance(data, Mapping) and data and all(isinstance(k, str) for k in data) and \
            not any(torch.is_tensor(v) for v in data.values()):
        if "train" in data:
            return data["train"]
        if len(data) == 1:
            return next(iter(data.values()))
        raise LandscapeError(f"give one split of the data (or a 'train' entry), got {', '.join(data)}")
    return data


def world_or(comm):
    return world() if comm is None else comm


def home_device(model: nn.Module) -> torch.device:
    return next((t.device for t in model.state_dict().values()), torch.device("cpu"))


@contextmanager
def borrowed(model: nn.Module, data, evaluation: EvalOptions):
    """The model on the evaluation's device (None: where it is) in eval mode with an
    :class:`Evaluator` of the loss; afterwards the model as it came: at its parameters, on its
    device, in its memory format and mode."""
    was_training = model.training
    home = home_device(model)
    contiguous = all(p.is_contiguous() for p in model.parameters())
    grads = {k: p.requires_grad for k, p in model.named_parameters()}
    origin = snapshot(model)
    try:
        options = replace(evaluation, accuracy_fn=None, device=home if evaluation.device is None else evaluation.device,
                          batch_size=evaluation.batch_size or DEFAULT_BATCH_SIZE)
        ev = Evaluator(model, one_split(data), options)
        yield ev, origin
    finally:
        Mover(model, origin, []).restore_()
        for k, p in model.named_parameters():
            p.requires_grad_(grads[k])
        model.to(home)
        if contiguous:
            model.to(memory_format=torch.contiguous_format)
        model.train(was_training)


class CountedForward:
    """A forward function, counted: a measure states the passes it made, not a formula."""

    def __init__(self, forward_fn):
        self.forward_fn, self.calls = forward_fn, 0

    def __call__(self, model, batch):
        self.calls += 1
        return self.forward_fn(model, batch)


def passes(calls: float, batches) -> int:
    """``calls`` of batches as whole passes over ``batches``, rounded up."""
    return math.ceil(calls / max(1, sum(1 for _ in batches)) - 1e-9)


def sample_generator(seed: int, k: int) -> torch.Generator:
    """Sample ``k``'s own generator: the same draw whichever rank computes it."""
    state = np.random.SeedSequence([int(seed), int(k)]).generate_state(2, dtype=np.uint32)
    return torch.Generator().manual_seed(int(state[0]) << 32 | int(state[1]))


def cpu_copy(origin: Mapping[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    return {k: v.detach().cpu().float() for k, v in origin.items()}


def scale(origin: Mapping[str, torch.Tensor], norm: str, ignore: str) -> dict[str, torch.Tensor]:
    """The per-coordinate scale ``T`` of a normalization: a direction of ones normalized like the
    surfaces' directions (:func:`landscape.directions.sampling.normalize_`): each filter's
    root-mean-square (``filter``), ``|theta|`` (``elementwise``) or ones (``none``); zero where
    ``ignore`` leaves a tensor out."""
    if norm not in NORMS:
        raise LandscapeError(f"norm must be one of {', '.join(NORMS)}, got {norm!r}")
    cpu = cpu_copy(origin)
    return normalize_({k: torch.ones_like(v) for k, v in cpu.items()}, cpu, norm, ignore)


def draw(origin_cpu: Mapping[str, torch.Tensor], norm: str, ignore: str, radius: float,
         generator: torch.Generator) -> dict[str, torch.Tensor]:
    """One average-case perturbation: a Gaussian direction of the surfaces normalized by ``norm``
    (``elementwise``: ``|theta|`` times a plain one), times ``radius``."""
    d = random_direction(origin_cpu, norm, ignore, generator)
    for k in d:
        d[k].mul_(radius)
    return d


def move_to(model: nn.Module, origin: Mapping[str, torch.Tensor], delta: Mapping[str, torch.Tensor] | None) -> None:
    """The model's parameters set to ``origin + delta`` in place (the surfaces' :class:`Mover`)."""
    Mover(model, origin, [delta] if delta is not None else []).move_((1.0,) if delta is not None else ())


def mean_stderr(values: Sequence[float]) -> tuple[float, float]:
    arr = np.asarray(values, dtype=np.float64)
    if arr.size == 0:
        return float("nan"), float("nan")
    err = float(arr.std(ddof=1) / np.sqrt(arr.size)) if arr.size > 1 else float("nan")
    return float(arr.mean()), err
