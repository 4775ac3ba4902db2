"""Loading untrusted checkpoints safely and fitting them to an architecture."""

from __future__ import annotations

import hashlib
import os
import pickle
import zipfile
from collections.abc import Mapping

import torch
from torch import nn

from landscape.errors import LandscapeError

# Keys under which training scripts (ours, the original loss-landscape tool, common recipes)
# keep the state dict inside a larger checkpoint dict.
STATE_KEYS = ("state_dict", "model_state_dict", "model", "net", "state")


def sha256(path: str | os.PathLike, chunk: int = 1 << 20) -> str:
    """Hex SHA-256 of a file's bytes."""
    h = hashlib.sha256()
    with open(path, "rb") as f:
        while block := f.read(chunk):
            h.update(block)
    return h.hexdigest()


def _looks_like_torch_file(path: str) -> bool:
    """torch.save writes a zip archive (since 1.6) or, in the legacy format, a pickle (0x80)."""
    if zipfile.is_zipfile(path):
        return True
    with open(path, "rb") as f:
        return f.read(1) == b"\x80"


def _read(path: str, unsafe_pickle: bool):
    if not os.path.isfile(path):
        raise LandscapeError(f"checkpoint {path!r} does not exist")
    if not _looks_like_torch_file(path):
        raise LandscapeError(f"{path!r} is not a PyTorch checkpoint (neither a torch.save zip "
                             "archive nor a legacy pickle)")
    try:
        return torch.load(path, map_location="cpu", weights_only=not unsafe_pickle)
    except pickle.UnpicklingError as exc:
        if not unsafe_pickle and "weights_only" in str(exc):
            raise LandscapeError(
                f"{path!r} holds pickled Python objects, not only tensors; if you trust its source, "
                "rerun with --unsafe-pickle (unpickling can run arbitrary code)"
            ) from None
        raise LandscapeError(f"{path!r} is not a PyTorch checkpoint ({str(exc).splitlines()[0]})") from None
    except (RuntimeError, EOFError, OSError, ValueError, AttributeError, ImportError) as exc:
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise LandscapeError(f"{path!r} is not a readable PyTorch checkpoint ({first})") from None


def _find_state_dict(obj, path: str) -> dict[str, torch.Tensor]:
    if isinstance(obj, nn.Module):
        return obj.state_dict()
    if isinstance(obj, Mapping):
        if obj and all(isinstance(v, torch.Tensor) for v in obj.values()):
            return dict(obj)
        for key in STATE_KEYS:
            if key in obj:
                return _find_state_dict(obj[key], path)
    raise LandscapeError(
        f"{path!r} holds no state dict (expected tensors, or a dict with one of the keys "
        f"{', '.join(STATE_KEYS)})"
    )


def _state_dict_of(obj, path: str) -> dict[str, torch.Tensor]:
    sd = _find_state_dict(obj, path)
    if sd and all(k.startswith("module.") for k in sd):
        sd = {k[len("module."):]: v for k, v in sd.items()}
    return sd


def load_state_dict(path: str | os.PathLike, unsafe_pickle: bool = False) -> dict[str, torch.Tensor]:
    """The state dict in ``path``: a bare state dict, or one inside a checkpoint dict.

    Loads with ``weights_only=True`` unless ``unsafe_pickle``: a checkpoint is untrusted input.
    A ``module.`` prefix left by ``DataParallel`` is removed.
    """
    path = os.fspath(path)
    return _state_dict_of(_read(path, unsafe_pickle), path)


def load_model(arch: str, path: str | os.PathLike, num_classes: int | None = None,
               in_channels: int | None = None, unsafe_pickle: bool = False) -> nn.Module:
    """Build ``arch`` and load the checkpoint at ``path`` into it: the one place a network is made
    from a file. ``num_classes``/``in_channels`` default to what the checkpoint records
    (``landscape-train`` writes both), else 10 and 3. A pruned checkpoint's recorded ``widths``
    shrink the architecture first, so its smaller tensors fit."""
    path = os.fspath(path)
    return model_from(_read(path, unsafe_pickle), arch, path, num_classes, in_channels)


def model_from(obj, arch: str, path: str | os.PathLike = "checkpoint", num_classes: int | None = None,
               in_channels: int | None = None) -> nn.Module:
    """:func:`load_model` of a checkpoint already read (:func:`read_checkpoint`), so a command
    that also wants its metadata reads the file once."""
    from landscape.models import build_model

    path = os.fspath(path)
    meta = obj if isinstance(obj, Mapping) else {}
    sd = _state_dict_of(obj, path)
    model = build_model(arch, num_classes=int(num_classes or meta.get("num_classes", 10)),
                        in_channels=int(in_channels or meta.get("in_channels", 3)))
    widths = meta.get("widths")
    if widths:
        from landscape.prune import resize_

        resize_(model, dict(widths))
    return load_into_(model, sd, source=f"checkpoint {path!r}")


def read_checkpoint(path: str | os.PathLike, unsafe_pickle: bool = False):
    """The whole object in a checkpoint file (for metadata such as epoch or arguments)."""
    return _read(os.fspath(path), unsafe_pickle)


def load_into_(model: nn.Module, state_dict: Mapping[str, torch.Tensor], source: str = "checkpoint") -> nn.Module:
    """Copy ``state_dict`` into ``model``; a mismatch names the missing, unexpected and misshapen keys."""
    own = model.state_dict()
    # Checkpoints from torch < 0.4.1 (the original tool's .t7 files) have no BatchNorm
    # num_batches_tracked counters; they do not take part in evaluation: keep the model's own.
    state_dict = dict(state_dict)
    for k in own:
        if k.endswith("num_batches_tracked") and k not in state_dict:
            state_dict[k] = own[k]
    missing = [k for k in own if k not in state_dict]
    unexpected = [k for k in state_dict if k not in own]
    misshapen = [
        f"{k} {tuple(state_dict[k].shape)} vs {tuple(own[k].shape)}"
        for k in own
        if k in state_dict and tuple(state_dict[k].shape) != tuple(own[k].shape)
    ]
    if missing or unexpected or misshapen:
        parts = []
        for label, keys in (("missing", missing), ("unexpected", unexpected), ("wrong shape", misshapen)):
            if keys:
                shown = ", ".join(keys[:5]) + (f" (+{len(keys) - 5} more)" if len(keys) > 5 else "")
                parts.append(f"{label} keys: {shown}")
        raise LandscapeError(f"{source} does not fit the architecture: " + "; ".join(parts))
    model.load_state_dict(state_dict, strict=True)
    return model


def summary(path: str | os.PathLike, unsafe_pickle: bool = False) -> dict:
    """What a checkpoint records about how its network was made, for titles and provenance:
    ``arch``, ``optimizer``, ``batch_size``, ``weight_decay``, ``epoch``, ``test_error`` (%),
    ``pruned`` and ``flops`` (a pruned network), ``quant`` (a quantized one). Only what is there."""
    return summary_of(_read(os.fspath(path), unsafe_pickle))


def summary_of(obj) -> dict:
    """:func:`summary` of a checkpoint already read (:func:`read_checkpoint`)."""
    if not isinstance(obj, Mapping):
        return {}
    args = obj.get("args") if isinstance(obj.get("args"), Mapping) else {}
    out: dict = {}
    batch = args.get("effective_batch_size", args.get("batch_size"))  # big-batch SR trains on a multiple
    for key, value in (("arch", obj.get("arch")), ("optimizer", args.get("optimizer")),
                       ("batch_size", batch), ("weight_decay", args.get("weight_decay")),
                       ("epoch", obj.get("epoch"))):
        if isinstance(value, str | int | float) and not isinstance(value, bool):
            out[key] = value
    if isinstance(obj.get("accuracy", obj.get("acc")), int | float):
        out["test_error"] = 100.0 - float(obj.get("accuracy", obj.get("acc")))
    prune = obj.get("prune")
    if isinstance(prune, Mapping):
        out["pruned"] = f"pruned {prune.get('preset') or 'by plan'}"
        if isinstance(prune.get("flops"), int | float):
            out["flops"] = float(prune["flops"])
    elif args.get("init_from") and obj.get("widths"):
        out["pruned"] = "pruned, retrained"
    elif args.get("plan"):
        out["pruned"] = f"pruned {args['plan']}, from scratch"
    quant = obj.get("quant")
    if isinstance(quant, Mapping) and quant.get("method"):
        out["quant"] = f"{str(quant['method']).upper()} {quant.get('bits', '?')}-bit"
    return out
