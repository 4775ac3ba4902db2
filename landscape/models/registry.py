"""The model registry: ``build_model("resnet20")`` or ``build_model("mypkg.nets:make_net")``.

The zoo's modules register their constructors here with :func:`register`; ``landscape.models``
imports them all, so the registry is full whenever ``landscape.models`` is imported.
"""

from __future__ import annotations

from collections.abc import Callable

from torch import nn

from landscape.errors import LandscapeError
from landscape.models.hf import build_hf
from landscape.runtime.usercode import call_user, load_callable

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


def build_model(name: str, num_classes: int = 10, in_channels: int = 3) -> nn.Module:
    """Build a registered architecture, or call ``package.module:callable`` with no arguments, or
    build ``hf:DIR``'s Hugging Face model from its config (randomly initialised: load weights next)."""
    if name.startswith("hf:"):
        return build_hf(name[3:])
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
