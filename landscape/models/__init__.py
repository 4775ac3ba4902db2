"""Model registry: ``build_model("resnet20")`` or ``build_model("mypkg.nets:make_net")``."""

from __future__ import annotations

import importlib
import os
import sys
from collections.abc import Callable

from torch import nn

from landscape.errors import LandscapeError, one_line

_REGISTRY: dict[str, Callable[..., nn.Module]] = {}


def register(name: str) -> Callable[[Callable[..., nn.Module]], Callable[..., nn.Module]]:
    """Decorator: make a constructor ``f(num_classes=..., in_channels=...)`` buildable by name."""

    def wrap(fn: Callable[..., nn.Module]) -> Callable[..., nn.Module]:
        _REGISTRY[name] = fn
        return fn

    return wrap


def list_models() -> list[str]:
    """Names accepted by :func:`build_model` (besides ``package.module:callable``)."""
    return sorted(_REGISTRY)


def load_callable(spec: str, what: str) -> Callable:
    """Import ``package.module:callable`` (modules in the current folder included, as ``python -m``
    finds them); a bad spec is a :class:`LandscapeError`. Calling what it returns through
    :func:`call_user` turns the user code's own failures into one line too."""
    module_name, _, attr = spec.partition(":")
    if not module_name or not attr:
        raise LandscapeError(f"{what} {spec!r} is not of the form package.module:callable")
    cwd = os.getcwd()
    if cwd not in sys.path and "" not in sys.path:
        sys.path.append(cwd)  # after the installed packages: the current folder never shadows them
    try:
        module = importlib.import_module(module_name)
    except Exception as exc:  # noqa: BLE001 - the user's module may fail in any way while importing
        raise LandscapeError(f"cannot import {module_name!r} for {what} {spec!r}: {type(exc).__name__}: "
                             f"{one_line(exc)}") from None
    fn = getattr(module, attr, None)
    if not callable(fn):
        raise LandscapeError(f"{module_name!r} has no callable {attr!r} ({what} {spec!r})")
    return fn


def call_user(fn: Callable, what: str, *args, **kwargs):
    """Call a user's function; an exception in it becomes a :class:`LandscapeError` naming it."""
    try:
        return fn(*args, **kwargs)
    except LandscapeError:
        raise
    except Exception as exc:  # noqa: BLE001 - whatever the user's code raises is reported, not a traceback
        raise LandscapeError(f"{what} raised {type(exc).__name__}: {one_line(exc)}") from None


def build_model(name: str, num_classes: int = 10, in_channels: int = 3) -> nn.Module:
    """Build a registered architecture, or call ``package.module:callable`` with no arguments."""
    if ":" in name:
        model = call_user(load_callable(name, "architecture"), f"architecture {name!r}")
        if not isinstance(model, nn.Module):
            raise LandscapeError(f"architecture {name!r} returned {type(model).__name__}, not a torch.nn.Module")
        return model
    if name not in _REGISTRY:
        raise LandscapeError(
            f"unknown architecture {name!r}; choose one of {', '.join(list_models())} "
            "or give package.module:callable"
        )
    return _REGISTRY[name](num_classes=num_classes, in_channels=in_channels)


# Importing the modules fills the registry.
from landscape.models import densenet, imagenet_resnet, quant_nets, resnet, tiny, vgg  # noqa: E402,F401

__all__ = ["build_model", "call_user", "list_models", "load_callable", "register"]
