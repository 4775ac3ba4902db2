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
widths_of(checkpoint))``, then load the state dict (``landscape.jobs.network.network`` does all
three).
"""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence

import torch
from torch import nn

from landscape.errors import LandscapeError
from landscape.io.checkpoint import save_checkpoint, sha256
from landscape.io.files import check_output
from landscape.models import build_model
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
    source_sha256: str | None = None,
    dataset: str = "",
) -> dict:
    """Write the pruned ``model`` (made from ``original`` by ``plan``) to ``path`` atomically, in
    the format above; returns the checkpoint dict. ``widths`` are relative to ``arch`` as
    :func:`landscape.models.build_model` builds it (so a pruned model pruned again rebuilds too);
    FLOPs and parameters are counted on one input of ``input_shape`` under the paper's convention
    (:func:`landscape.prune.count`), ``*_original`` for ``original``. ``source``: the unpruned
    checkpoint's file, recorded with its SHA-256 (``source_sha256`` when already known). ``dataset``: what the
    original was trained on, recorded (when given) for the retraining command."""
    if strategy not in STRATEGIES:
        raise LandscapeError(f"strategy must be one of {', '.join(STRATEGIES)}, got {strategy!r}")

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
        **({"dataset": str(dataset)} if dataset else {}),
        "prune": {
            "plan": {str(k): float(v) for k, v in plan.items()},
            "strategy": strategy,
            "preset": preset or "",
            "source": src,
            "source_sha256": source_sha256 or (sha256(src) if src and os.path.isfile(src) else ""),
            "input_shape": [int(d) for d in input_shape],
            "flops": int(flops),
            "params": int(params),
            "flops_original": int(flops0),
            "params_original": int(params0),
        },
    }
    path = check_output(path)
    save_checkpoint(path, ckpt)
    return ckpt


__all__ = ["save_pruned"]
