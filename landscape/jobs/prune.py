"""``landscape-prune``'s jobs, one function per action: count a checkpoint's FLOPs and
parameters, prune it into a smaller checkpoint, scan its per-layer sensitivity (with the paper's
figures). The command parses its options, calls one of these and prints."""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, field, replace

import torch
from torch import nn

from landscape.data.datasets import DataSpec
from landscape.engine.options import Output
from landscape.errors import LandscapeError
from landscape.evaluation.options import EvalOptions
from landscape.io.checkpoint import Checkpoint
from landscape.io.files import owned_output, replacing
from landscape.jobs.network import ModelSpec
from landscape.models import build_model
from landscape.prune.checkpoints import save_pruned
from landscape.prune.counts import count, layer_counts, meta_copy
from landscape.prune.plans import PRESETS, preset_info, resolve_plan
from landscape.prune.removal import plan_widths, prune_filters, resize_
from landscape.prune.scan import SensitivityResult, check_ratios, filter_norms, sensitivity
from landscape.runtime.parallel import collective, local_rank_and_size, world
from landscape.runtime.threads import choose_threads, using_threads


def default_input_shape(arch: str, in_channels: int) -> tuple[int, ...]:
    """One sample's shape for an architecture of the zoo: 224x224 for ``*_imagenet``, 8x8 for the
    digits nets, 28x28 for the MNIST ones, 32x32 otherwise."""
    if arch.endswith("_imagenet"):
        return (in_channels, 224, 224)
    if arch in ("digits_cnn", "mlp", "mlp_bn"):
        return (in_channels, 8, 8)
    if arch in ("lenet", "mlp_mnist"):
        return (in_channels, 28, 28)
    return (in_channels, 32, 32)


def io_of(model: nn.Module) -> tuple[int, int]:
    """``(num_classes, in_channels)`` of a built model: its last linear's outputs, first conv's inputs."""
    linears = [m for m in model.modules() if isinstance(m, nn.Linear)]
    convs = [m for m in model.modules() if isinstance(m, nn.modules.conv._ConvNd)]
    return (linears[-1].out_features if linears else 10), (convs[0].in_channels if convs else 3)


def _model(spec: ModelSpec, preset_name: str) -> tuple[nn.Module, Checkpoint | None]:
    """The checkpoint's model and the checkpoint (read once), or (without a checkpoint) the
    architecture on the meta device, shaped as the preset's network, and None."""
    arch = spec.need_arch()
    if spec.path:
        ckpt = spec.read()
        return spec.build(ckpt).eval(), ckpt
    info = preset_info(preset_name) if preset_name else None
    with torch.device("meta"):
        model = build_model(arch, num_classes=spec.num_classes or (info.num_classes if info else 10),
                            in_channels=spec.in_channels or (info.input_shape[0] if info else 3))
    return model, None


def _dataset_of(ckpt: Checkpoint | None) -> str:
    """The dataset a checkpoint records it was trained on, or ""."""
    name = ckpt.meta.get("dataset") if ckpt is not None else None
    return name if isinstance(name, str) else ""


def _shape_of(arch: str, ckpt: Checkpoint | None, preset_name: str, in_channels: int, given) -> tuple[int, ...]:
    """The given input shape, else the preset's, else what a pruned checkpoint recorded, else the zoo's."""
    if given:
        return tuple(int(d) for d in given)
    if preset_name:
        return tuple(preset_info(preset_name).input_shape)
    meta = ckpt.meta if ckpt is not None else {}
    recorded = meta.get("prune", {}).get("input_shape") if isinstance(meta.get("prune"), dict) else None
    return tuple(int(d) for d in recorded) if recorded else default_input_shape(arch, in_channels)


def _preset_name(plan) -> str:
    return plan.strip() if isinstance(plan, str) and plan.strip() in PRESETS else ""


@dataclass(frozen=True)
class CountReport:
    """FLOPs and parameters of a network (the paper's convention), and after a plan if one is given."""

    arch: str
    input_shape: tuple[int, ...]
    flops: int
    params: int
    layers: tuple = ()  # LayerCount per layer, when asked
    plan_name: str = ""
    narrowed: int = 0
    flops_after: int | None = None
    params_after: int | None = None


@dataclass(frozen=True)
class CountConfig:
    """``landscape-prune --count``: the network (a checkpoint, or the architecture alone: shapes
    only), a ``plan`` to count after (a preset's name or ``{layer: fraction}``), one sample's
    ``input_shape`` (None: the preset's, the checkpoint's, the zoo's), 1x1 projection
    ``shortcuts`` counted too, and one line ``per_layer``."""

    model: ModelSpec
    plan: str | Mapping | None = None
    input_shape: tuple[int, ...] | None = None
    shortcuts: bool = False
    per_layer: bool = False


@dataclass(frozen=True)
class PruneConfig:
    """``landscape-prune --plan P --out F``: the checkpoint's network pruned by ``plan`` into the
    smaller checkpoint ``out`` (never over an existing file unless ``overwrite``), filters chosen by
    ``strategy``, at ``threads`` torch threads (None: :mod:`landscape.runtime.threads`' policy)."""

    model: ModelSpec
    plan: str | Mapping
    out: str
    strategy: str = "independent"
    input_shape: tuple[int, ...] | None = None
    overwrite: bool = False
    threads: int | None = None


@dataclass(frozen=True)
class ScanConfig:
    """``landscape-prune --sensitivity``: the checkpoint's network, its ``data`` (a
    :class:`landscape.data.datasets.DataSpec`; the paper scans the test split), the ``ratios`` to
    prune each of ``layers`` (None: every conv that can be pruned alone) by, the ``strategy``, how
    each pair is evaluated (``evaluation``, :class:`landscape.EvalOptions`; ``threads`` None: the
    policy) and the sensitivity file (``output``, :class:`landscape.Output`; its figures go beside
    it)."""

    model: ModelSpec
    ratios: tuple[float, ...]
    data: DataSpec = field(default_factory=lambda: DataSpec(split="test"))
    layers: tuple[str, ...] | None = None
    strategy: str = "independent"
    evaluation: EvalOptions = field(default_factory=lambda: EvalOptions(loss_fn="crossentropy", device="cpu"))
    output: Output = field(default_factory=Output)

    def __post_init__(self):
        for name, kind in (("model", ModelSpec), ("data", DataSpec), ("evaluation", EvalOptions),
                           ("output", Output)):
            if not isinstance(getattr(self, name), kind):
                raise LandscapeError(f"`{name}` must be a landscape.{kind.__name__}, got "
                                     f"{type(getattr(self, name)).__name__}")


def count_checkpoint(cfg: CountConfig) -> CountReport:
    """Count a checkpoint's network (or, without one, the architecture: shapes only)."""
    name = _preset_name(cfg.plan)
    model, ckpt = _model(cfg.model, name)
    shape = _shape_of(cfg.model.arch, ckpt, name, io_of(model)[1], cfg.input_shape)
    flops, params = count(model, shape, cfg.shortcuts)
    report = CountReport(cfg.model.arch, shape, flops, params,
                         tuple(layer_counts(model, shape, cfg.shortcuts)) if cfg.per_layer else ())
    if cfg.plan:
        resolved = resolve_plan(cfg.plan, model)
        widths = plan_widths(model, resolved)
        f1, p1 = count(resize_(meta_copy(model), widths), shape, cfg.shortcuts)
        report = CountReport(cfg.model.arch, shape, flops, params, report.layers, name, len(widths), f1, p1)
    return report


def prune_checkpoint(cfg: PruneConfig) -> dict:
    """Prune the checkpoint of ``cfg.model`` by ``cfg.plan`` and write the smaller one to
    ``cfg.out``; returns it."""
    with owned_output(cfg.out, overwrite=cfg.overwrite) as (out,):
        model, ckpt = _model(cfg.model, "")
        resolved = resolve_plan(cfg.plan, model)
        name = resolved.preset
        with using_threads(choose_threads(cfg.threads)):
            pruned = prune_filters(model, resolved, cfg.strategy)
        nc, ic = io_of(model)
        shape = _shape_of(cfg.model.arch, ckpt, name, ic, cfg.input_shape)
        return save_pruned(out, pruned, original=model, arch=cfg.model.arch, plan=resolved, input_shape=shape,
                           num_classes=nc, in_channels=ic, strategy=cfg.strategy, preset=name, source=cfg.model.path,
                           source_sha256=ckpt.sha256, dataset=_dataset_of(ckpt))


def scan_checkpoint(cfg: ScanConfig, comm=None) -> tuple[SensitivityResult, list[str]]:
    """The sensitivity scan of a checkpoint (:func:`landscape.prune.sensitivity`) into
    ``cfg.output.path``, with the paper's Fig. 2(b) and 2(a) beside it (rank 0). Collective under
    MPI. Returns the result and the figure paths."""
    comm = comm or world()
    check_ratios(cfg.ratios)  # before loading anything
    if cfg.output.path is None:
        raise LandscapeError("the scan needs its file: give `output` a path (its figures go beside it)")
    data, spec = cfg.data, cfg.model

    def setup():
        dataset, _ = data.load()
        in_ch = dataset.x.shape[1] if dataset.x.dim() == 4 else 1
        sized = replace(spec, num_classes=spec.num_classes or dataset.num_classes or None,
                        in_channels=spec.in_channels or in_ch)
        model, ckpt = _model(sized, "")  # refuses NaN or infinite weights (network.check_weights)
        return dataset, model, ckpt.sha256

    evaluation = replace(cfg.evaluation, threads=choose_threads(cfg.evaluation.threads,
                                                                local_rank_and_size(comm)[1]))
    with using_threads(evaluation.threads):
        dataset, model, model_sha256 = collective(comm, setup)
        attrs = {"arch": spec.arch, "model": os.path.abspath(spec.path), "model_sha256": model_sha256,
                 "split": data.split, "samples": data.samples or "", **data.provenance(),
                 **(cfg.output.provenance or {})}
        result = sensitivity(model, dataset, cfg.ratios, cfg.layers, cfg.strategy, evaluation=evaluation,
                             output=replace(cfg.output, provenance=attrs), comm=comm)
    paths: list[str] = []
    if comm.rank == 0:
        from landscape.plot.prune import pruning_figures  # matplotlib only on the rank that draws

        root = os.path.splitext(cfg.output.path)[0]
        norms = filter_norms(model, result.layers)
        for key, fig in pruning_figures(result, norms, name=spec.arch, data=f"{data.dataset} {data.split}").items():
            figure_path = f"{root}.png" if key == "sensitivity" else f"{root}_norms.png"
            with replacing(figure_path) as tmp:
                fig.savefig(tmp, dpi=150, format="png")
            paths.append(figure_path)
    return result, paths


__all__ = ["CountConfig", "CountReport", "PruneConfig", "ScanConfig", "count_checkpoint", "default_input_shape",
           "io_of", "prune_checkpoint", "scan_checkpoint"]
