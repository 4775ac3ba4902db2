"""Perturbations of a minimizer: the per-coordinate scale of a normalization, random draws, moving
the model in place and putting it back, and the checks every measure shares.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from contextlib import contextmanager

import numpy as np
import torch
from torch import nn

from landscape.directions.sampling import normalize_, random_direction
from landscape.errors import LandscapeError
from landscape.evaluation.evaluator import DEFAULT_BATCH_SIZE, Evaluator
from landscape.evaluation.options import EvalOptions
from landscape.runtime.device import resolve_device
from landscape.runtime.parallel import world
from landscape.space.params import IGNORES, Mover, ignored, is_float, snapshot

NORMS = ("filter", "elementwise", "none")


def check_norm(norm: str, ignore: str) -> None:
    if norm not in NORMS:
        raise LandscapeError(f"norm must be one of {', '.join(NORMS)}, got {norm!r}")
    if ignore not in IGNORES:
        raise LandscapeError(f"ignore must be one of {', '.join(IGNORES)}, got {ignore!r}")


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
    if comm is None:
        return world()
    return comm


@contextmanager
def borrowed(model: nn.Module, data, loss_fn, batch_size, device, forward_fn):
    """The model on ``device`` in eval mode with an :class:`Evaluator` of the loss; afterwards the
    model as it came: at its parameters, on its device, in its memory format and mode."""
    was_training = model.training
    home = next((t.device for t in model.state_dict().values()), torch.device("cpu"))
    contiguous = all(p.is_contiguous() for p in model.parameters())
    grads = {k: p.requires_grad for k, p in model.named_parameters()}
    origin = snapshot(model)
    dev = home if device is None else resolve_device(device)
    try:
        options = EvalOptions(loss_fn=loss_fn, accuracy_fn=None, batch_size=batch_size or DEFAULT_BATCH_SIZE,
                              device=dev, forward_fn=forward_fn)
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


def sample_generator(seed: int, k: int) -> torch.Generator:
    """Sample ``k``'s own generator: the same draw whichever rank computes it."""
    state = np.random.SeedSequence([int(seed), int(k)]).generate_state(2, dtype=np.uint32)
    return torch.Generator().manual_seed(int(state[0]) << 32 | int(state[1]))


def cpu_copy(origin: Mapping[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    return {k: v.detach().cpu().float() for k, v in origin.items()}


def scale(origin: Mapping[str, torch.Tensor], norm: str, ignore: str = "biasbn") -> dict[str, torch.Tensor]:
    """The per-coordinate scale ``T`` of a normalization (see the module docstring): ones, each
    filter's root-mean-square (filter normalization of a direction of ones), or ``|theta|``;
    zero where ``ignore`` leaves a tensor out."""
    check_norm(norm, ignore)
    cpu = cpu_copy(origin)
    if norm == "filter":
        return normalize_({k: torch.ones_like(v) for k, v in cpu.items()}, cpu, "filter", ignore)
    out = {}
    for k, v in cpu.items():
        if not is_float(v) or ignored(v, ignore):
            out[k] = torch.zeros_like(v)
        else:
            out[k] = v.abs() if norm == "elementwise" else torch.ones_like(v)
    return out


def draw(origin_cpu: Mapping[str, torch.Tensor], norm: str, ignore: str, radius: float,
            generator: torch.Generator) -> dict[str, torch.Tensor]:
    """One average-case perturbation: a Gaussian direction of the surfaces (``filter``, ``none``),
    or ``|theta|`` times a plain one (``elementwise``), times ``radius``."""
    d = random_direction(origin_cpu, "none" if norm == "elementwise" else norm, ignore, generator)
    if norm == "elementwise":
        for k in d:
            d[k].mul_(origin_cpu[k].abs())
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
