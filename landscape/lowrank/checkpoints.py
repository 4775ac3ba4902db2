"""The low-rank checkpoint: a state dict that loads into the zoo architecture once the recorded
layers are factorized to their recorded ranks.

Format (plain Python types and tensors only, so ``torch.load(weights_only=True)`` reads it)::

    {
      "state_dict": {name: tensor},              # the factorized network's (layer.0.weight, layer.1.weight, ...)
      "arch": "digits_cnn", "num_classes": 10, "in_channels": 1,
      "widths": {conv name: out_channels},       # only when the source was a pruned network
      "dataset": "digits",                       # what the source was trained on, when it says
      "lowrank": {
        "ranks": {layer name: rank},             # every factorized layer of the architecture
        "rank_ratio": 0.5 or None, "energy": None or 0.9,
        "kept": [layer names left whole],        # where factorizing would not save weights
        "source": "/abs/path/of/the/original.pt", "source_sha256": hex, "input_shape": [1, 8, 8],
        "flops": int, "params": int, "flops_original": int, "params_original": int,
      },
    }

A network retrained from it (``landscape-train --init-from``) carries the same ``"lowrank"``
entry in its checkpoints. To rebuild: ``build_model``, the pruned widths if any, then
:func:`landscape.lowrank.apply_ranks_` with the ranks, then load the state dict
(``landscape.jobs.network.network`` does it all).
"""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence

from torch import nn

from landscape.errors import LandscapeError, is_int
from landscape.io.checkpoint import save_checkpoint, sha256
from landscape.io.files import check_output
from landscape.lowrank.factorize import ranks
from landscape.prune.counts import count

KEY = "lowrank"


def lowrank_of(checkpoint: Mapping) -> dict | None:
    """The ``"lowrank"`` entry of a checkpoint dict (its ranks validated), or None for a network
    that is not factorized."""
    if not isinstance(checkpoint, Mapping) or not checkpoint.get(KEY):
        return None
    entry = checkpoint[KEY]
    if not isinstance(entry, Mapping) or not isinstance(entry.get("ranks"), Mapping):
        raise LandscapeError(f"the checkpoint's {KEY!r} entry holds no mapping of layer names to ranks")
    for k, v in entry["ranks"].items():
        if not isinstance(k, str) or not is_int(v) or v < 1:
            raise LandscapeError(f"the checkpoint's low-rank ranks hold {k!r}: {v!r}; expected layer names and "
                                 "positive integers")
    return dict(entry)


def ranks_of(checkpoint: Mapping) -> dict[str, int] | None:
    """``{layer name: rank}`` a low-rank checkpoint records, or None."""
    entry = lowrank_of(checkpoint)
    return {k: int(v) for k, v in entry["ranks"].items()} if entry else None


def save_factorized(path: str | os.PathLike, model: nn.Module, *, original: nn.Module, arch: str,
                    input_shape: Sequence[int], num_classes: int, in_channels: int, rank_ratio: float | None = None,
                    energy: float | None = None, source: str | os.PathLike | None = None,
                    source_sha256: str | None = None, extra: Mapping | None = None) -> dict:
    """Write the factorized ``model`` (made from ``original``) to ``path`` atomically in the format
    above; returns the checkpoint dict. FLOPs and parameters are counted on one input of
    ``input_shape`` under the pruning paper's convention (:func:`landscape.prune.count`: the
    multiply-adds and weights of conv and linear layers). ``extra``: more top-level entries
    (``widths`` and ``dataset`` of the source)."""
    layer_ranks = ranks(model)
    if not layer_ranks:
        raise LandscapeError("no layer was factorized: at this rank none would have fewer weights")
    flops, params = count(model, input_shape)
    flops0, params0 = count(original, input_shape)
    candidates = [n for n, m in original.named_modules() if n and type(m) in (nn.Linear, nn.Conv2d)
                  and getattr(m, "groups", 1) == 1]
    src = os.path.abspath(source) if source else ""
    ckpt = {
        "state_dict": {k: v.detach().cpu() for k, v in model.state_dict().items()},
        "arch": str(arch), "num_classes": int(num_classes), "in_channels": int(in_channels),
        **dict(extra or {}),
        KEY: {
            "ranks": layer_ranks,
            "rank_ratio": None if rank_ratio is None else float(rank_ratio),
            "energy": None if energy is None else float(energy),
            "kept": [n for n in candidates if n not in layer_ranks],
            "source": src,
            "source_sha256": source_sha256 or (sha256(src) if src and os.path.isfile(src) else ""),
            "input_shape": [int(d) for d in input_shape],
            "flops": int(flops), "params": int(params), "flops_original": int(flops0), "params_original": int(params0),
        },
    }
    path = check_output(path)
    save_checkpoint(path, ckpt)
    return ckpt


__all__ = ["KEY", "lowrank_of", "ranks_of", "save_factorized"]
