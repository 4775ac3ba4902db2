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

Gradients: a plain function runs under ``torch.no_grad()`` (the fast default) unless it asks for
them with a ``needs_grad = True`` attribute (:func:`needs_grad` sets it); a metric object's
``__call__`` runs as it is and takes gradients itself (``torch.enable_grad()``)::

    @needs_grad
    def grad_norm(model):
        loss = F.cross_entropy(model(X), y)
        return torch.cat([g.flatten() for g in torch.autograd.grad(loss, list(model.parameters()))]).norm()

What identifies a metric's code goes into its configuration, and so into the surface file: a
function's qualified name and the SHA-256 of its source (where Python can find it), a user
metric class's too. A metric whose code changed under the same name is refused on resume
instead of silently mixing old values with new ones.

Loss and accuracy are one such metric (:class:`landscape.evaluation.evaluator.Evaluation`); the Hessian's
extreme eigenvalues another (:class:`landscape.hessian.EigMetric`); a plain function
``fn(model) -> float`` becomes one with :func:`as_metric`. The engine, the file, MPI, resume and
plots handle every metric alike, by the names of its arrays.
"""

from __future__ import annotations

import functools
import hashlib
import inspect
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol, runtime_checkable

import torch
from torch import nn

from landscape.errors import LandscapeError
from landscape.evaluation.losses import function_name

RESERVED = ("completed", "xcoordinates", "ycoordinates", "zcoordinates")


@dataclass
class Point:
    """Where the engine is: flat index ``index`` of the grid, at ``coords``."""

    index: int = -1
    coords: tuple[float, ...] = ()


@dataclass
class Context:
    """What a metric's ``setup`` may use: the model (already on ``device``), the primary data as
    :class:`landscape.data.batches.Batches`, the loss function, the grid, the current point and the
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


def needs_grad(fn: Callable) -> Callable:
    """Mark a metric function as needing gradients (it then runs with autograd on); returns it."""
    fn.needs_grad = True
    return fn


def source_sha256(obj) -> str | None:
    """SHA-256 of the source of a function or class (of a callable object: its class), or None
    where Python has none (built-ins, code typed into a REPL)."""
    target = obj.func if isinstance(obj, functools.partial) else obj
    if not (inspect.isfunction(target) or inspect.ismethod(target) or inspect.isclass(target)):
        target = type(target)
    try:
        source = inspect.getsource(target)
    except (OSError, TypeError):
        return None
    return hashlib.sha256(source.encode()).hexdigest()


class FunctionMetric:
    """A function ``fn(model) -> float`` (or a dict with the keys ``names``) as a metric; it runs
    under ``torch.no_grad()`` unless ``needs_grad`` (default: the function's own ``needs_grad``
    attribute)."""

    def __init__(self, name: str, fn: Callable[[nn.Module], float | Mapping[str, float]],
                 names: Sequence[str] | None = None, needs_grad: bool | None = None):
        self.fn = fn
        self.names = tuple(names) if names is not None else (name,)
        self.label = name
        self.needs_grad = bool(getattr(fn, "needs_grad", False) if needs_grad is None else needs_grad)

    def __call__(self, model: nn.Module) -> dict[str, float]:
        with torch.enable_grad() if self.needs_grad else torch.no_grad():
            try:
                return values_of(self, self.fn(model))
            except RuntimeError as exc:
                if not self.needs_grad and "does not require grad" in str(exc):
                    raise LandscapeError(f"metric {self.label!r} takes gradients, and metrics run without them "
                                         "unless they ask: set needs_grad = True on the function "
                                         "(@landscape.evaluation.metrics.needs_grad)") from None
                raise

    def config(self) -> dict:
        cfg = {"function": function_name(self.fn)}
        digest = source_sha256(self.fn)
        return {**cfg, "source_sha256": digest} if digest else cfg


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
    """``metric.config()`` when it has one, and its class's name; for a class of the user's own
    (not landscape's), the SHA-256 of its source too (see the module docstring)."""
    cfg = metric.config() if hasattr(metric, "config") else {}
    out = {"class": type(metric).__qualname__, **cfg}
    if not type(metric).__module__.startswith("landscape.") and "source_sha256" not in cfg:
        digest = source_sha256(type(metric))
        if digest:
            out["source_sha256"] = digest
    return out


__all__ = ["Context", "FunctionMetric", "Metric", "Point", "as_metric", "check_names", "config_of", "needs_grad",
           "source_sha256", "values_of"]
