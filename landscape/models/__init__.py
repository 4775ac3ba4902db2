"""The model zoo: ``build_model("resnet20")``, ``list_models()``; importing this package registers
every architecture of the zoo (see :mod:`landscape.models.registry`)."""

from __future__ import annotations

from landscape.models import densenet, imagenet_resnet, quant_nets, resnet, tiny, vgg  # noqa: F401 - fill the registry
from landscape.models.registry import build_model, list_models, register
from landscape.runtime.usercode import call_user, load_callable

__all__ = ["build_model", "call_user", "list_models", "load_callable", "register"]
