"""Per-point quantities: what a surface records at every grid point.

A metric is any object with

- ``names``: the arrays it fills (e.g. ``("train_loss", "train_acc")``, ``("max_eig", "min_eig")``);
- ``__call__(model) -> float | Mapping[str, float]``: its values at the model's current parameters;
- optionally ``setup(context)``: once per run and rank, before the first point (build an
  evaluator, move data to the device); ``context.point`` then tells each call where it is;
- optionally ``config() -> dict``: what its values depend on besides the model, data and
  directions (a tolerance, a loss): recorded in the surface file and checked on resume;
- optionally ``channels_last = False``: the metric runs slower on a channels-last model (Hessian
  products through torch's own layers do), so the engine keeps the model's memory format as it is.

Loss and accuracy are one such metric (:class:`landscape.evaluate.Evaluation`); the Hessian's
extreme eigenvalues another (:class:`landscape.hessian.EigMetric`); a plain function
``fn(model) -> float`` becomes one with :func:`as_metric`. The engine, the file, MPI, resume and
plots handle every metric alike, by the names of its arrays.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol, runtime_checkable

import torch
from torch import nn

from landscape.errors import LandscapeError
from landscape.losses import function_name

RESERVED = ("completed", "xcoordinates", "ycoordinates", "zcoordinates")


@dataclass
class Point:
    """Where the engine is: flat index ``index`` of the grid, at ``coords``."""

    index: int = -1
    coords: tuple[float, ...] = ()


@dataclass
class Context:
    """What a metric's ``setup`` may use: the model (already on ``device``), the primary data as
    :class:`landscape.batches.Batches`, the loss function, the grid, the current point and the
    engine's forward function."""

    model: nn.Module
    device: torch.device
    data: Any = None
    loss_fn: Callable | None = None
    grid: Any = None
    rank: int = 0
    point: Point = field(default_factory=Point)
    forward_fn: Callable | None = None  # how the engine runs the model on a batch (None: model(x))


@runtime_checkable
class Metric(Protocol):
    names: Sequence[str]

    def __call__(self, model: nn.Module) -> float | Mapping[str, float]: ...


class FunctionMetric:
    """A function ``fn(model) -> float`` (or a dict with the keys ``names``) as a metric."""

    def __init__(self, name: str, fn: Callable[[nn.Module], float | Mapping[str, float]],
                 names: Sequence[str] | None = None):
        self.fn = fn
        self.names = tuple(names) if names is not None else (name,)
        self.label = name

    def __call__(self, model: nn.Module) -> dict[str, float]:
        with torch.no_grad():
            return values_of(self, self.fn(model))

    def config(self) -> dict:
        return {"function": function_name(self.fn)}


def as_metric(name: str, obj) -> Metric:
    """A metric from a ``{name: obj}`` entry: a metric object as it is, or a function."""
    if hasattr(obj, "names") and callable(obj):
        return obj
    if callable(obj):
        return FunctionMetric(name, obj)
    raise LandscapeError(f"metric {name!r} is neither a function of the model nor a metric object")


def values_of(metric: Metric, result) -> dict[str, float]:
    """A metric's call result as ``{name: float}`` over exactly its ``names``."""
    names = tuple(metric.names)
    if isinstance(result, Mapping):
        missing = [n for n in names if n not in result]
        if missing:
            raise LandscapeError(f"a metric returned no value for {', '.join(missing)}")
        return {n: float(result[n]) for n in names}
    if len(names) != 1:
        raise LandscapeError(f"a metric returned one number for the {len(names)} names {', '.join(names)}")
    return {names[0]: float(result)}


def check_names(metrics: Sequence[Metric]) -> list[str]:
    """All array names of ``metrics``, refusing duplicates and reserved names."""
    seen: list[str] = []
    for m in metrics:
        for n in m.names:
            if not n or not isinstance(n, str) or "/" in n or n in RESERVED:
                raise LandscapeError(f"{n!r} cannot name a quantity (reserved or not a plain name)")
            if n in seen:
                raise LandscapeError(f"two metrics both write {n!r}")
            seen.append(n)
    return seen


def config_of(metric: Metric) -> dict:
    """``metric.config()`` when it has one, else its class name."""
    cfg = metric.config() if hasattr(metric, "config") else {}
    return {"class": type(metric).__qualname__, **cfg}


__all__ = ["Context", "FunctionMetric", "Metric", "Point", "as_metric", "check_names", "config_of", "values_of"]
