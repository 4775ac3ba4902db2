"""The pruned checkpoint: a state dict that loads into the zoo architecture once it is resized.

Format (plain Python types and tensors only, so ``torch.load(weights_only=True)`` reads it)::

    {
      "state_dict": {name: tensor},             # the smaller model's weights and statistics
      "arch": "resnet56",                       # zoo name or package.module:callable
      "num_classes": 10, "in_channels": 3,
      "widths": {conv name: out_channels},      # every conv whose filters were pruned
      "prune": {
        "plan": {conv name: fraction}, "strategy": "independent" | "greedy",
        "preset": "resnet56-B" or "", "source": "/abs/path/of/the/unpruned.pt" or "",
        "source_sha256": hex or "", "input_shape": [3, 32, 32],
        "flops": int, "params": int, "flops_original": int, "params_original": int,
      },
    }

To rebuild: ``model = build_model(arch, num_classes, in_channels)``, ``resize_(model,
widths_of(checkpoint))``, then load the state dict (``landscape.checkpoint.load_model`` does all
three).
"""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import torch
from torch import nn

from landscape.errors import LandscapeError
from landscape.files import check_output, replacing
from landscape.prune.counts import count
from landscape.prune.removal import STRATEGIES, conv_widths


def save_pruned(
    path: str | os.PathLike,
    model: nn.Module,
    *,
    original: nn.Module,
    arch: str,
    plan: Mapping[str, float],
    input_shape: Sequence[int],
    num_classes: int,
    in_channels: int,
    strategy: str = "independent",
    preset: str = "",
    source: str | os.PathLike | None = None,
) -> dict:
    """Write the pruned ``model`` (made from ``original`` by ``plan``) to ``path`` atomically, in
    the format above; returns the checkpoint dict. ``widths`` are relative to ``arch`` as
    :func:`landscape.models.build_model` builds it (so a pruned model pruned again rebuilds too);
    FLOPs and parameters are counted on one input of ``input_shape`` under the paper's convention
    (:func:`landscape.prune.count`), ``*_original`` for ``original``."""
    from landscape.checkpoint import sha256

    if strategy not in STRATEGIES:
        raise LandscapeError(f"strategy must be one of {', '.join(STRATEGIES)}, got {strategy!r}")
    from landscape.models import build_model

    with torch.device("meta"):  # relative to the architecture as built: the original may be pruned already
        full = conv_widths(build_model(arch, num_classes=num_classes, in_channels=in_channels))
    small = conv_widths(model)
    if set(full) != set(small) or set(small) != set(conv_widths(original)):
        raise LandscapeError(f"the pruned model's conv layers are not those of {arch}")
    widths = {k: int(w) for k, w in small.items() if w != full[k]}
    flops, params = count(model, input_shape)
    flops0, params0 = count(original, input_shape)
    src = os.path.abspath(source) if source else ""
    ckpt = {
        "state_dict": {k: v.detach().cpu() for k, v in model.state_dict().items()},
        "arch": str(arch),
        "num_classes": int(num_classes),
        "in_channels": int(in_channels),
        "widths": widths,
        "prune": {
            "plan": {str(k): float(v) for k, v in plan.items()},
            "strategy": strategy,
            "preset": preset or "",
            "source": src,
            "source_sha256": sha256(src) if src and os.path.isfile(src) else "",
            "input_shape": [int(d) for d in input_shape],
            "flops": int(flops),
            "params": int(params),
            "flops_original": int(flops0),
            "params_original": int(params0),
        },
    }
    path = check_output(path)
    with replacing(path) as tmp:
        torch.save(ckpt, tmp)
    return ckpt


def widths_of(checkpoint) -> dict[str, int] | None:
    """The conv widths a pruned checkpoint records (``{conv name: out_channels}``), or None for a
    checkpoint of a full-width model (no ``widths`` entry, or an empty one)."""
    if not isinstance(checkpoint, Mapping) or not checkpoint.get("widths"):
        return None
    widths = checkpoint["widths"]
    if not isinstance(widths, Mapping):
        raise LandscapeError(f"the checkpoint's 'widths' is a {type(widths).__name__}, not a mapping of "
                             "conv names to widths")
    out = {}
    for k, v in widths.items():
        if not isinstance(k, str) or isinstance(v, bool) or not isinstance(v, int) or v < 1:
            raise LandscapeError(f"the checkpoint's widths hold {k!r}: {v!r}; expected conv names and "
                                 "positive integers")
        out[k] = v
    return out


# ------------------------------------------------------------------------- from checkpoint files
# What landscape-prune does, one function per action: the command parses its options and prints.


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
           unsafe_pickle: bool) -> tuple[nn.Module, dict]:
    """The checkpoint's model and metadata, or (without a checkpoint) the architecture on the meta
    device, shaped as the preset's network."""
    from landscape.checkpoint import load_model, read_checkpoint
    from landscape.models import build_model
    from landscape.prune.plans import preset_info

    if path:
        meta = read_checkpoint(path, unsafe_pickle)
        model = load_model(arch, path, num_classes=num_classes, in_channels=in_channels, unsafe_pickle=unsafe_pickle)
        return model.eval(), (meta if isinstance(meta, dict) else {})
    info = preset_info(preset_name) if preset_name else None
    with torch.device("meta"):
        model = build_model(arch, num_classes=num_classes or (info.num_classes if info else 10),
                            in_channels=in_channels or (info.input_shape[0] if info else 3))
    return model, {}


def _shape_of(arch: str, meta: dict, preset_name: str, in_channels: int, given) -> tuple[int, ...]:
    """The given input shape, else the preset's, else what a pruned checkpoint recorded, else the zoo's."""
    from landscape.prune.plans import preset_info

    if given:
        return tuple(int(d) for d in given)
    if preset_name:
        return tuple(preset_info(preset_name).input_shape)
    recorded = meta.get("prune", {}).get("input_shape") if isinstance(meta.get("prune"), dict) else None
    return tuple(int(d) for d in recorded) if recorded else default_input_shape(arch, in_channels)


def _preset_name(plan) -> str:
    from landscape.prune.plans import PRESETS

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
    from landscape.prune.counts import layer_counts, meta_copy
    from landscape.prune.plans import resolve_plan
    from landscape.prune.removal import plan_widths, resize_

    name = _preset_name(plan)
    model, meta = _model(arch, path, name, num_classes, in_channels, unsafe_pickle)
    shape = _shape_of(arch, meta, name, io_of(model)[1], input_shape)
    flops, params = count(model, shape, shortcuts)
    report = CountReport(arch, shape, flops, params,
                         tuple(layer_counts(model, shape, shortcuts)) if per_layer else ())
    if plan:
        resolved, name = resolve_plan(plan, model)
        widths = plan_widths(model, resolved)
        f1, p1 = count(resize_(meta_copy(model), widths), shape, shortcuts)
        report = CountReport(arch, shape, flops, params, report.layers, name, len(widths), f1, p1)
    return report


def prune_checkpoint(path: str, arch: str, plan: str | Mapping, out: str, strategy: str = "independent",
                     input_shape: Sequence[int] | None = None, num_classes: int | None = None,
                     in_channels: int | None = None, unsafe_pickle: bool = False, overwrite: bool = False) -> dict:
    """Prune the checkpoint at ``path`` by ``plan`` and write the smaller one to ``out``; returns it."""
    from landscape.prune.plans import resolve_plan
    from landscape.prune.removal import prune_filters

    out = check_output(out, overwrite)
    model, meta = _model(arch, path, "", num_classes, in_channels, unsafe_pickle)
    resolved, name = resolve_plan(plan, model)
    pruned = prune_filters(model, resolved, strategy)
    nc, ic = io_of(model)
    shape = _shape_of(arch, meta, name, ic, input_shape)
    return save_pruned(out, pruned, original=model, arch=arch, plan=resolved, input_shape=shape, num_classes=nc,
                       in_channels=ic, strategy=strategy, preset=name, source=path)


def scan_checkpoint(path: str, arch: str, data, ratios: Sequence[float], out: str,
                    layers: Sequence[str] | None = None, strategy: str = "independent", loss: str = "crossentropy",
                    batch_size: int | None = None, device: str | None = "cpu", threads: int | None = None,
                    chunk_size: int = 1, progress: bool = True, overwrite: bool = False, repair: bool = False,
                    num_classes: int | None = None, in_channels: int | None = None, unsafe_pickle: bool = False,
                    comm=None):
    """The sensitivity scan of a checkpoint on ``data`` (a :class:`landscape.data.DataSpec`), into
    ``out`` with the paper's Fig. 2(b) and 2(a) beside it (rank 0). Collective under MPI.
    Returns ``(SensitivityResult, figure paths)``."""
    from landscape.checkpoint import sha256
    from landscape.files import replacing as _replacing
    from landscape.parallel import collective, local_rank_and_size, world
    from landscape.prune.scan import check_ratios, sensitivity
    from landscape.threads import threads as using_threads

    comm = comm or world()
    check_ratios(ratios)  # before loading anything

    def setup():
        dataset, _ = data.load()
        in_ch = dataset.x.shape[1] if dataset.x.dim() == 4 else 1
        model, _ = _model(arch, path, "", num_classes or dataset.num_classes or None, in_channels or in_ch,
                          unsafe_pickle)
        return dataset, model

    _, ranks_on_node = local_rank_and_size(comm)
    with using_threads(threads, ranks_on_node):
        dataset, model = collective(comm, setup)
        attrs = {"arch": arch, "model": os.path.abspath(path), "model_file_sha256": sha256(path),
                 "split": data.split, "samples": data.samples or "", **data.provenance()}
        result = sensitivity(model, dataset, ratios, layers, strategy, comm, out, loss=loss, batch_size=batch_size,
                             device=device, overwrite=overwrite, repair=repair, attrs=attrs, chunk_size=chunk_size,
                             progress=progress)
    paths: list[str] = []
    if comm.rank == 0:
        from landscape.plot.prune import figures

        root = os.path.splitext(out)[0]
        for key, fig in figures(result, model, name=arch, data=f"{data.dataset} {data.split}").items():
            figure_path = f"{root}.png" if key == "sensitivity" else f"{root}_norms.png"
            with _replacing(figure_path) as tmp:
                fig.savefig(tmp, dpi=150, format="png")
            paths.append(figure_path)
    return result, paths


__all__ = ["CountReport", "count_checkpoint", "default_input_shape", "io_of", "prune_checkpoint", "save_pruned",
           "scan_checkpoint", "widths_of"]
