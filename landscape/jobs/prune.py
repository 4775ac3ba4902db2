"""``landscape-prune``'s jobs, one function per action: count a checkpoint's FLOPs and
parameters, prune it into a smaller checkpoint, scan its per-layer sensitivity (with the paper's
figures). The command parses its options, calls one of these and prints."""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import torch
from torch import nn

from landscape.errors import LandscapeError
from landscape.io.checkpoint import Checkpoint, read_checkpoint
from landscape.io.files import owned_output, replacing
from landscape.jobs.network import network
from landscape.models import build_model
from landscape.prune.checkpoints import save_pruned
from landscape.prune.counts import count, layer_counts, meta_copy
from landscape.prune.plans import PRESETS, preset_info, resolve_plan
from landscape.prune.removal import plan_widths, prune_filters, resize_
from landscape.prune.scan import check_ratios, filter_norms, sensitivity
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


def _model(arch: str, path: str | None, preset_name: str, num_classes: int | None, in_channels: int | None,
           unsafe_pickle: bool) -> tuple[nn.Module, Checkpoint | None]:
    """The checkpoint's model and the checkpoint (read once), or (without a checkpoint) the
    architecture on the meta device, shaped as the preset's network, and None."""
    if path:
        ckpt = read_checkpoint(path, unsafe_pickle)
        return network(ckpt, arch, num_classes, in_channels).eval(), ckpt
    info = preset_info(preset_name) if preset_name else None
    with torch.device("meta"):
        model = build_model(arch, num_classes=num_classes or (info.num_classes if info else 10),
                            in_channels=in_channels or (info.input_shape[0] if info else 3))
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


def count_checkpoint(arch: str, path: str | None = None, plan: str | Mapping | None = None,
                     input_shape: Sequence[int] | None = None, shortcuts: bool = False, per_layer: bool = False,
                     num_classes: int | None = None, in_channels: int | None = None,
                     unsafe_pickle: bool = False) -> CountReport:
    """Count a checkpoint's network (or, without one, the architecture: shapes only)."""
    name = _preset_name(plan)
    model, ckpt = _model(arch, path, name, num_classes, in_channels, unsafe_pickle)
    shape = _shape_of(arch, ckpt, name, io_of(model)[1], input_shape)
    flops, params = count(model, shape, shortcuts)
    report = CountReport(arch, shape, flops, params,
                         tuple(layer_counts(model, shape, shortcuts)) if per_layer else ())
    if plan:
        resolved = resolve_plan(plan, model)
        widths = plan_widths(model, resolved)
        f1, p1 = count(resize_(meta_copy(model), widths), shape, shortcuts)
        report = CountReport(arch, shape, flops, params, report.layers, name, len(widths), f1, p1)
    return report


def prune_checkpoint(path: str, arch: str, plan: str | Mapping, out: str, strategy: str = "independent",
                     input_shape: Sequence[int] | None = None, num_classes: int | None = None,
                     in_channels: int | None = None, unsafe_pickle: bool = False, overwrite: bool = False,
                     threads: int | None = None) -> dict:
    """Prune the checkpoint at ``path`` by ``plan`` and write the smaller one to ``out``; returns it.
    ``threads``: torch threads (None: :mod:`landscape.runtime.threads`' policy)."""
    with owned_output(out, overwrite=overwrite) as (out,):
        model, ckpt = _model(arch, path, "", num_classes, in_channels, unsafe_pickle)
        resolved = resolve_plan(plan, model)
        name = resolved.preset
        with using_threads(choose_threads(threads)):
            pruned = prune_filters(model, resolved, strategy)
        nc, ic = io_of(model)
        shape = _shape_of(arch, ckpt, name, ic, input_shape)
        return save_pruned(out, pruned, original=model, arch=arch, plan=resolved, input_shape=shape, num_classes=nc,
                           in_channels=ic, strategy=strategy, preset=name, source=path, source_sha256=ckpt.sha256,
                           dataset=_dataset_of(ckpt))


def scan_checkpoint(path: str, arch: str, data, ratios: Sequence[float], out: str,
                    layers: Sequence[str] | None = None, strategy: str = "independent", loss: str = "crossentropy",
                    batch_size: int | None = None, device: str | None = "cpu", threads: int | None = None,
                    chunk_size: int = 1, progress: bool = True, overwrite: bool = False, repair: bool = False,
                    num_classes: int | None = None, in_channels: int | None = None, unsafe_pickle: bool = False,
                    comm=None):
    """The sensitivity scan of a checkpoint on ``data`` (a :class:`landscape.data.datasets.DataSpec`), into
    ``out`` with the paper's Fig. 2(b) and 2(a) beside it (rank 0). Collective under MPI.
    Returns ``(SensitivityResult, figure paths)``."""
    comm = comm or world()
    check_ratios(ratios)  # before loading anything

    def setup():
        dataset, _ = data.load()
        in_ch = dataset.x.shape[1] if dataset.x.dim() == 4 else 1
        model, ckpt = _model(arch, path, "", num_classes or dataset.num_classes or None, in_channels or in_ch,
                             unsafe_pickle)
        bad = next((n for n, t in model.state_dict().items() if t.is_floating_point() and not t.isfinite().all()),
                   None)
        if bad is not None:
            raise LandscapeError(f"checkpoint {path!r} holds NaN or infinite values ({bad}): nothing to prune")
        return dataset, model, ckpt.sha256

    _, ranks_on_node = local_rank_and_size(comm)
    with using_threads(choose_threads(threads, ranks_on_node)):
        dataset, model, model_sha256 = collective(comm, setup)
        attrs = {"arch": arch, "model": os.path.abspath(path), "model_sha256": model_sha256,
                 "split": data.split, "samples": data.samples or "", **data.provenance()}
        result = sensitivity(model, dataset, ratios, layers, strategy, comm, out, loss=loss, batch_size=batch_size,
                             device=device, overwrite=overwrite, repair=repair, attrs=attrs, chunk_size=chunk_size,
                             progress=progress)
    paths: list[str] = []
    if comm.rank == 0:
        from landscape.plot.prune import pruning_figures  # matplotlib only on the rank that draws

        root = os.path.splitext(out)[0]
        norms = filter_norms(model, result.layers)
        for key, fig in pruning_figures(result, norms, name=arch, data=f"{data.dataset} {data.split}").items():
            figure_path = f"{root}.png" if key == "sensitivity" else f"{root}_norms.png"
            with replacing(figure_path) as tmp:
                fig.savefig(tmp, dpi=150, format="png")
            paths.append(figure_path)
    return result, paths


__all__ = ["CountReport", "count_checkpoint", "default_input_shape", "io_of", "prune_checkpoint", "scan_checkpoint"]
