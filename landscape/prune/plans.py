"""Pruning plans: ``{conv layer name: fraction of its filters to remove}``.

``parse_plan("layer1.0.conv1=0.5,layer2.3.conv1=0.3")`` reads one from text; ``preset(name)``
gives the plans of Li et al., *Pruning Filters for Efficient ConvNets* (ICLR'17), Table 1. The
paper numbers layers from 1 at the stem; in a ResNet, block b's first conv is layer 2b and its
second conv layer 2b+1.
"""

from __future__ import annotations

import math
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from types import MappingProxyType

import torch
from torch import nn

from landscape.errors import LandscapeError
from landscape.models import build_model
from landscape.prune.graph import is_conv


@dataclass(frozen=True, eq=False)
class Plan(Mapping[str, float]):
    """A pruning plan resolved once (:func:`resolve_plan`): ``{conv name: fraction of its filters to
    remove}``, every fraction checked to be in [0, 1), and the paper's preset it came from (or "").
    It reads as the mapping itself and compares equal to a dict of the same fractions."""

    fractions: Mapping[str, float]
    preset: str = ""

    def __post_init__(self):
        object.__setattr__(self, "fractions", MappingProxyType(check_fractions(self.fractions)))

    def __getitem__(self, name: str) -> float:
        return self.fractions[name]

    def __iter__(self) -> Iterator[str]:
        return iter(self.fractions)

    def __len__(self) -> int:
        return len(self.fractions)

    def __repr__(self) -> str:
        return f"Plan({dict(self.fractions)!r}" + (f", preset={self.preset!r})" if self.preset else ")")


def parse_plan(text: str) -> Plan:
    """``"layer1.0.conv1=0.5,layer2.3.conv1=0.3"`` -> ``{"layer1.0.conv1": 0.5, ...}``.

    Every fraction must be in [0, 1); a layer named twice is an error.
    """
    plan: dict[str, float] = {}
    items = [t.strip() for t in str(text).split(",") if t.strip()]
    if not items:
        raise LandscapeError(f"empty pruning plan {text!r}: give layer=fraction pairs or a preset name")
    for item in items:
        name, sep, value = item.partition("=")
        name = name.strip()
        if not sep or not name:
            raise LandscapeError(f"plan entry {item!r} is not layer=fraction (in {text!r}); presets: "
                                 f"{', '.join(PRESETS)}")
        try:
            fraction = float(value)
        except ValueError:
            raise LandscapeError(f"plan entry {item!r}: {value.strip()!r} is not a number") from None
        if name in plan:
            raise LandscapeError(f"plan names layer {name!r} twice")
        plan[name] = fraction
    return Plan(plan)


def check_fractions(plan: Mapping[str, float]) -> dict[str, float]:
    """A plain copy of ``plan`` after checking that every fraction is a number in [0, 1)."""
    out: dict[str, float] = {}
    for name, p in plan.items():
        try:
            f = float(p)
        except (TypeError, ValueError):
            raise LandscapeError(f"fraction for layer {name!r} is not a number: {p!r}") from None
        if not 0.0 <= f < 1.0 or math.isnan(f):
            raise LandscapeError(f"fraction for layer {name!r} must be in [0, 1), got {p!r}")
        out[str(name)] = f
    return out


def kept(n: int, fraction: float) -> int:
    """Filters kept of ``n`` when ``fraction`` is pruned: ``floor(n * (1 - fraction))`` (the paper's
    rule; the tiny epsilon keeps e.g. 10 * (1 - 0.3) = 6.9999999 from losing a filter)."""
    return math.floor(n * (1.0 - fraction) + 1e-9)


# ----------------------------------------------------------------------------------- presets


@dataclass(frozen=True)
class Preset:
    """One of the paper's plans, with the architecture it is for and what Table 1 prints."""

    name: str
    arch: str
    plan: dict[str, float]
    input_shape: tuple[int, ...]
    num_classes: int
    description: str
    paper: dict = field(default_factory=dict)  # Table 1: flops, params, flops_pct, params_pct (as printed)
    paper_original: dict = field(default_factory=dict)  # Table 1's unpruned row: flops, params


def _resnet_blocks(blocks: list[int]) -> list[tuple[int, int, int]]:
    """``(paper layer number of the block's first conv, stage, index in stage)`` per block."""
    out, b = [], 1
    for stage, n in enumerate(blocks):
        for j in range(n):
            out.append((2 * b, stage, j))
            b += 1
    return out


def _first_convs(blocks: list[int], fractions: list[float], skip: set[int]) -> dict[str, float]:
    return {f"layer{stage + 1}.{j}.conv1": fractions[stage]
            for layer, stage, j in _resnet_blocks(blocks) if layer not in skip and fractions[stage] > 0}


_VGG16_A = {f"features.{i}": 0.5 for i in (0, 24, 27, 30, 34, 37, 40)}  # conv 1 and 8-13
_R34_STAGE3 = {f"layer3.{j}.conv2": 0.2 for j in range(6)} | {"layer3.0.downsample.0": 0.2}
_R34_SKIP = {2, 8, 14, 16, 26, 28, 30, 32}
_CIFAR = (3, 32, 32)
_IMAGENET = (3, 224, 224)

PRESETS: dict[str, Preset] = {p.name: p for p in (
    Preset("vgg16-A", "vgg16", _VGG16_A, _CIFAR, 10,
           "VGG-16-pruned-A: 50% of the filters of conv 1 and conv 8-13",
           {"flops": "2.06e8", "params": "5.4e6", "flops_pct": "34.2", "params_pct": "64.0"},
           {"flops": "3.13e8", "params": "1.5e7"}),
    Preset("resnet56-A", "resnet56", _first_convs([9, 9, 9], [0.1, 0.1, 0.1], {16, 20, 38, 54}), _CIFAR, 10,
           "ResNet-56-pruned-A: 10% of every block's first conv, skipping layers 16, 20, 38, 54",
           {"flops": "1.12e8", "params": "7.7e5", "flops_pct": "10.4", "params_pct": "9.4"},
           {"flops": "1.25e8", "params": "8.5e5"}),
    Preset("resnet56-B", "resnet56", _first_convs([9, 9, 9], [0.6, 0.3, 0.1], {16, 18, 20, 34, 38, 54}),
           _CIFAR, 10,
           "ResNet-56-pruned-B: 60/30/10% of the first convs of stages 1/2/3, skipping 16, 18, 20, 34, 38, 54",
           {"flops": "9.09e7", "params": "7.3e5", "flops_pct": "27.6", "params_pct": "13.7"},
           {"flops": "1.25e8", "params": "8.5e5"}),
    Preset("resnet110-A", "resnet110", _first_convs([18, 18, 18], [0.5, 0.0, 0.0], {36}), _CIFAR, 10,
           "ResNet-110-pruned-A: 50% of the first convs of stage 1, skipping layer 36",
           {"flops": "2.13e8", "params": "1.68e6", "flops_pct": "15.9", "params_pct": "2.3"},
           {"flops": "2.53e8", "params": "1.72e6"}),
    Preset("resnet110-B", "resnet110", _first_convs([18, 18, 18], [0.5, 0.4, 0.3], {36, 38, 74}), _CIFAR, 10,
           "ResNet-110-pruned-B: 50/40/30% of the first convs of stages 1/2/3, skipping 36, 38, 74",
           {"flops": "1.55e8", "params": "1.16e6", "flops_pct": "38.6", "params_pct": "32.4"},
           {"flops": "2.53e8", "params": "1.72e6"}),
    Preset("resnet34-A", "resnet34_imagenet", _first_convs([3, 4, 6, 3], [0.3, 0.3, 0.3, 0.0], _R34_SKIP),
           _IMAGENET, 1000,
           "ResNet-34-pruned-A: 30% of the first convs of stages 1-3, skipping 2, 8, 14, 16, 26, 28, 30, 32",
           {"flops": "3.08e9", "params": "1.99e7", "flops_pct": "15.5", "params_pct": "7.6"},
           {"flops": "3.64e9", "params": "2.16e7"}),
    Preset("resnet34-B", "resnet34_imagenet", _first_convs([3, 4, 6, 3], [0.5, 0.6, 0.4, 0.0], _R34_SKIP),
           _IMAGENET, 1000,
           "ResNet-34-pruned-B: 50/60/40% of the first convs of stages 1-3, skipping 2, 8, 14, 16, 26, 28, 30, 32",
           {"flops": "2.76e9", "params": "1.93e7", "flops_pct": "24.2", "params_pct": "10.8"},
           {"flops": "3.64e9", "params": "2.16e7"}),
    Preset("resnet34-C", "resnet34_imagenet", _R34_STAGE3, _IMAGENET, 1000,
           "ResNet-34-pruned-C: the second conv of every stage-3 block with the stage-3 projection "
           "(same indices), 204 of 256 filters kept",
           {"flops": "3.37e9", "params": "2.01e7", "flops_pct": "7.5", "params_pct": "7.2"},
           {"flops": "3.64e9", "params": "2.16e7"}),
)}


def list_presets() -> list[str]:
    """Names accepted by :func:`preset`."""
    return list(PRESETS)


def preset_info(name: str) -> Preset:
    """The :class:`Preset` called ``name`` (its architecture, input shape, the paper's numbers)."""
    if name not in PRESETS:
        raise LandscapeError(f"unknown pruning preset {name!r}; choose one of {', '.join(PRESETS)}")
    return PRESETS[name]


def reference_model(name: str, meta: bool = True) -> nn.Module:
    """The architecture a preset is for, as the paper counts it (``num_classes`` of its dataset),
    on the ``meta`` device unless ``meta`` is false."""
    p = preset_info(name)
    if meta:
        with torch.device("meta"):
            return build_model(p.arch, num_classes=p.num_classes, in_channels=p.input_shape[0])
    return build_model(p.arch, num_classes=p.num_classes, in_channels=p.input_shape[0])


def _conv_shapes(model: nn.Module) -> dict[str, tuple[int, ...]]:
    return {n: tuple(m.weight.shape) for n, m in model.named_modules() if is_conv(m)}


def check_preset(name: str, model: nn.Module) -> None:
    """Refuse (:class:`LandscapeError`) a model that is not the preset's architecture at full
    width: its conv layers' names and weight shapes must be the reference's (the input channels
    of the stem and the number of classes may differ)."""
    p = preset_info(name)
    ref, own = _conv_shapes(reference_model(name)), _conv_shapes(model)
    diff = sorted(set(ref) ^ set(own))
    if diff:
        raise LandscapeError(f"preset {name!r} is for {p.arch}, not this model (its conv layers differ: "
                             f"{diff[0]!r} is only in {'the model' if diff[0] in own else p.arch})")
    for k, shape in ref.items():
        if own[k][0] != shape[0] or own[k][2:] != shape[2:] or (own[k][1] != shape[1] and k != next(iter(ref))):
            raise LandscapeError(f"preset {name!r} is for a full-width {p.arch}; the model's {k} has "
                                 f"weight shape {own[k]}, not {shape}")


def preset(name: str, model: nn.Module | None = None) -> Plan:
    """The plan of the paper's ``name`` (``vgg16-A``, ``resnet56-A/B``, ``resnet110-A/B``,
    ``resnet34-A/B/C``); with ``model``, first check that it is the preset's architecture."""
    p = preset_info(name)
    if model is not None:
        check_preset(name, model)
    return Plan(p.plan, preset=name)


def resolve_plan(plan: Plan | Mapping[str, float] | str, model: nn.Module | None = None) -> Plan:
    """The :class:`Plan` of a mapping, a preset name or plan text (a preset checked against
    ``model`` when given); a :class:`Plan` is already resolved and returned as it is."""
    if isinstance(plan, Plan):
        return plan
    if isinstance(plan, str):
        if plan.strip() in PRESETS:
            return preset(plan.strip(), model)
        if "=" not in plan:
            raise LandscapeError(f"{plan!r} is neither a preset ({', '.join(PRESETS)}) nor layer=fraction pairs")
        return parse_plan(plan)
    if not isinstance(plan, Mapping):
        raise LandscapeError(f"a pruning plan is a mapping of layer names to fractions, got {type(plan).__name__}")
    return Plan(plan)


__all__ = [
    "PRESETS", "Plan", "Preset", "check_fractions", "check_preset", "kept", "list_presets", "parse_plan",
    "preset", "preset_info", "reference_model", "resolve_plan",
]
