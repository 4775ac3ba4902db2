"""Checkpoints: read an untrusted file once, safely, into a :class:`Checkpoint`; fit a state dict to a model.

Every checkpoint read is checked before it is unpickled: each member of torch's zip archive
against its CRC-32 (``torch.load`` checks none, so a flipped byte in a tensor loaded as another
weight). A checkpoint dict that we write (:func:`save_checkpoint`: training checkpoints, resume
files, curves, pruned networks) also records the SHA-256 of all its other entries, every tensor and
every field, under :data:`CHECKSUM`; it is verified on reading. A file without it (a user's, or
one written before landscape 0.3) is CRC-checked only. Whatever fails is one line.
"""

from __future__ import annotations

import hashlib
import io
import os
import pickle
import zipfile
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from functools import cached_property

import torch
from torch import nn

from landscape.errors import LandscapeError, first_line, one_line
from landscape.io.files import write_bytes
from landscape.space.params import tensor_bytes

# Keys under which training scripts (ours, the original loss-landscape tool, common recipes)
# keep the state dict inside a larger checkpoint dict.
STATE_KEYS = ("state_dict", "model_state_dict", "model", "net", "state")
CHECKSUM = "landscape_sha256"  # the entry of a checkpoint dict we write: the SHA-256 of all its other entries


def sha256(path: str | os.PathLike, chunk: int = 1 << 20) -> str:
    """Hex SHA-256 of a file's bytes."""
    h = hashlib.sha256()
    with open(path, "rb") as f:
        while block := f.read(chunk):
            h.update(block)
    return h.hexdigest()


def _feed(h, obj) -> None:
    """Hash ``obj`` into ``h`` unambiguously: each value with its type, tensors with dtype, shape
    and bytes, mappings in sorted key order."""
    if isinstance(obj, torch.Tensor):
        t = obj.detach()
        if t.layout != torch.strided:
            t = t.to_dense()
        if t.is_quantized:  # the values it stands for
            t = t.dequantize()
        h.update(f"T{t.dtype}{tuple(t.shape)}|".encode())
        h.update(tensor_bytes(t))
    elif isinstance(obj, Mapping):
        h.update(f"{{{len(obj)}|".encode())
        for key in sorted(obj, key=lambda k: (type(k).__name__, repr(k))):
            _feed(h, key)
            _feed(h, obj[key])
    elif isinstance(obj, list | tuple):
        h.update(f"{type(obj).__name__[0]}{len(obj)}|".encode())
        for item in obj:
            _feed(h, item)
    elif isinstance(obj, bytes):
        h.update(f"b{len(obj)}|".encode())
        h.update(obj)
    else:  # str, numbers, None, torch.dtype, ...: their exact repr (a float's repr round-trips)
        text = repr(obj)
        h.update(f"{type(obj).__name__}{len(text)}|{text}".encode())


def contents_sha256(obj: Mapping) -> str:
    """SHA-256 of every entry of a checkpoint dict but :data:`CHECKSUM`: tensors (dtype, shape,
    bytes), nested dicts and lists, numbers and strings; the order of keys does not count."""
    h = hashlib.sha256()
    _feed(h, {k: v for k, v in obj.items() if k != CHECKSUM})
    return h.hexdigest()


def save_checkpoint(path: str | os.PathLike, obj) -> str:
    """``torch.save(obj)`` to ``path``, atomically and safely: serialized in memory, then written
    by :func:`landscape.io.files.write_bytes` (a full disk is one clean error, not torch's
    "file write failed"); return the path. A checkpoint dict is saved with the SHA-256 of all its
    entries under :data:`CHECKSUM` (:func:`contents_sha256`), which :func:`read_checkpoint` verifies."""
    if isinstance(obj, Mapping):
        obj = {**{k: v for k, v in obj.items() if k != CHECKSUM}, CHECKSUM: contents_sha256(obj)}
    buffer = io.BytesIO()
    torch.save(obj, buffer)
    return write_bytes(path, buffer.getbuffer())


def _looks_like_torch_file(path: str) -> bool:
    """torch.save writes a zip archive (since 1.6) or, in the legacy format, a pickle (0x80)."""
    if zipfile.is_zipfile(path):
        return True
    with open(path, "rb") as f:
        return f.read(1) == b"\x80"


def _read_safetensors(path: str) -> dict[str, torch.Tensor]:
    """A ``.safetensors`` file (tensors only, no code), or the shards a ``*.safetensors.index.json`` names."""
    try:
        from safetensors import SafetensorError
        from safetensors.torch import load_file
    except ImportError:
        raise LandscapeError(f"{path!r} is a safetensors file: pip install safetensors "
                             "(or 'torch-landscape[hf]')") from None
    files = [path]
    if path.endswith(".json"):
        import json

        try:
            with open(path) as f:
                shards = sorted(set(json.load(f)["weight_map"].values()))
        except (OSError, ValueError, KeyError, TypeError) as exc:
            raise LandscapeError(f"{path!r} is not a safetensors index ({first_line(exc)})") from None
        files = [os.path.join(os.path.dirname(path), s) for s in shards]
    out: dict[str, torch.Tensor] = {}
    for file in files:
        if not os.path.isfile(file):
            raise LandscapeError(f"checkpoint {file!r} does not exist")
        try:
            out.update(load_file(file, device="cpu"))
        except (SafetensorError, OSError, ValueError) as exc:
            raise LandscapeError(f"{file!r} is not a readable safetensors file ({first_line(exc)})") from None
    return out


def verify_archive(path: str) -> None:
    """Check every member of the zip archive ``path`` against its CRC-32 (what ``torch.load`` skips);
    a mismatch, or an archive whose headers cannot be read, is one :class:`LandscapeError`
    "... is damaged ..." naming the member."""
    try:
        with zipfile.ZipFile(path) as archive:
            bad = archive.testzip()  # reads every member and checks its CRC-32
    except MemoryError:
        raise
    except Exception as exc:  # noqa: BLE001 - zipfile raises several kinds on damaged headers
        raise LandscapeError(f"{path!r} is damaged: its zip archive cannot be read ({one_line(exc)})") from None
    if bad is not None:
        raise LandscapeError(f"{path!r} is damaged: its member {bad!r} fails its CRC-32 check")


def verify_contents(obj, path: str) -> None:
    """Refuse a checkpoint dict whose :data:`CHECKSUM` does not match its entries (one line "...
    is damaged ..."); one without it passes."""
    if not isinstance(obj, Mapping) or CHECKSUM not in obj:
        return
    if obj[CHECKSUM] != contents_sha256(obj):
        raise LandscapeError(f"{path!r} is damaged: its contents do not match the checksum it records")


def _read(path: str, unsafe_pickle: bool):
    if not os.path.isfile(path):
        raise LandscapeError(f"checkpoint {path!r} does not exist")
    if path.endswith((".safetensors", ".safetensors.index.json")):
        return _read_safetensors(path)
    if not _looks_like_torch_file(path):
        raise LandscapeError(f"{path!r} is not a PyTorch checkpoint (neither a torch.save zip "
                             "archive nor a legacy pickle)")
    if zipfile.is_zipfile(path):
        verify_archive(path)
    try:
        obj = torch.load(path, map_location="cpu", weights_only=not unsafe_pickle)
    except pickle.UnpicklingError as exc:
        if not unsafe_pickle and "weights_only" in str(exc):
            raise LandscapeError(
                f"{path!r} holds pickled Python objects, not only tensors; if you trust its source, "
                "rerun with --unsafe-pickle (unpickling can run arbitrary code)"
            ) from None
        raise LandscapeError(f"{path!r} is not a PyTorch checkpoint ({first_line(exc)})") from None
    except MemoryError:
        raise
    except Exception as exc:  # noqa: BLE001 - a damaged pickle raises any kind (KeyError: 175, IndexError, ...)
        raise LandscapeError(f"{path!r} is not a readable PyTorch checkpoint "
                             f"({type(exc).__name__}: {first_line(exc)})") from None
    verify_contents(obj, path)
    return obj


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
    """The state dict in ``path`` (see :func:`read_checkpoint`)."""
    return read_checkpoint(path, unsafe_pickle).state_dict


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


def _recorded_int(meta: Mapping, key: str) -> int | None:
    value = meta.get(key)
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int) or not 1 <= value <= 1_000_000:
        raise LandscapeError(f"the checkpoint's {key!r} is {value!r}, not a positive integer")
    return int(value)


@dataclass(frozen=True)
class Checkpoint:
    """A checkpoint file read once: its state dict, the other entries of its checkpoint dict
    (``meta``: epoch, arguments, widths, ...; empty for a bare state dict) and the file's SHA-256;
    ``checksummed``: it recorded the checksum of its entries (:data:`CHECKSUM`), which matched."""

    path: str
    state_dict: dict[str, torch.Tensor]
    meta: Mapping = field(default_factory=dict)
    checksummed: bool = False

    @cached_property
    def sha256(self) -> str:
        return sha256(self.path)

    @property
    def widths(self) -> dict[str, int] | None:
        """The conv widths of a pruned network (validated), or None."""
        return widths_of(self.meta)

    @property
    def num_classes(self) -> int | None:
        return _recorded_int(self.meta, "num_classes")

    @property
    def in_channels(self) -> int | None:
        return _recorded_int(self.meta, "in_channels")

    def summary(self) -> dict:
        """What the checkpoint records about how its network was made, for titles and provenance:
        ``arch``, ``optimizer``, ``batch_size``, ``weight_decay``, ``epoch``, ``seed``, ``test_error`` (%),
        ``pruned`` and ``flops`` (a pruned network), ``quant`` (a quantized one), ``lowrank`` (a
        factorized one), ``sam`` (SAM or ASAM), ``distilled`` (from a teacher). Only what is there."""
        return summary_of(self.meta)


def read_checkpoint(path: str | os.PathLike, unsafe_pickle: bool = False) -> Checkpoint:
    """Read the checkpoint at ``path`` once: a bare state dict, or a checkpoint dict holding one
    (under ``state_dict``, ``model``, ...). Loads with ``weights_only=True`` unless
    ``unsafe_pickle``: a checkpoint is untrusted input. A ``module.`` prefix left by
    ``DataParallel`` is removed."""
    path = os.fspath(path)
    obj = _read(path, unsafe_pickle)
    meta = {k: v for k, v in obj.items() if k not in ("state_dict", CHECKSUM)} if isinstance(obj, Mapping) else {}
    return Checkpoint(path, _state_dict_of(obj, path), meta, isinstance(obj, Mapping) and CHECKSUM in obj)


def read_checkpoint_dict(path: str | os.PathLike, needs: Sequence[str] = (), what: str = "checkpoint") -> dict:
    """A checkpoint dict we wrote, read whole (CRC-32 and :data:`CHECKSUM` verified,
    ``weights_only``) with the entries ``needs``; anything else is one :class:`LandscapeError`."""
    path = os.fspath(path)
    obj = _read(path, unsafe_pickle=False)
    if not isinstance(obj, Mapping):
        raise LandscapeError(f"{path!r} is not a {what} (it holds a {type(obj).__name__}, not a dict)")
    missing = [k for k in needs if k not in obj]
    if missing:
        raise LandscapeError(f"{path!r} is not a whole {what}: it has no {', '.join(map(repr, missing))} entry")
    return {k: v for k, v in obj.items() if k != CHECKSUM}


def load_into_(model: nn.Module, state_dict: Mapping[str, torch.Tensor], source: str = "checkpoint") -> nn.Module:
    """Copy ``state_dict`` into ``model``; a mismatch names the missing, unexpected and misshapen keys."""
    own = model.state_dict()
    # Checkpoints from torch < 0.4.1 (the original tool's .t7 files) have no BatchNorm
    # num_batches_tracked counters; they do not take part in evaluation: keep the model's own.
    state_dict = dict(state_dict)
    for k in own:
        if k.endswith("num_batches_tracked") and k not in state_dict:
            state_dict[k] = own[k]
    # Tied weights (a language model's output layer is its embedding) are saved once: a missing
    # name whose tensor is another's in the model takes that one's value.
    by_storage: dict[int, str] = {}
    for k, v in own.items():
        if k in state_dict and v.numel():
            by_storage.setdefault(v.data_ptr(), k)
    for k, v in own.items():
        if k not in state_dict and v.numel() and v.data_ptr() in by_storage:
            state_dict[k] = state_dict[by_storage[v.data_ptr()]]
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


def summary_of(obj: Mapping) -> dict:
    """See :meth:`Checkpoint.summary`; ``obj`` is the checkpoint dict."""
    if not isinstance(obj, Mapping):
        return {}
    args = obj.get("args") if isinstance(obj.get("args"), Mapping) else {}
    out: dict = {}
    batch = args.get("effective_batch_size", args.get("batch_size"))  # big-batch SR trains on a multiple
    for key, value in (("arch", obj.get("arch")), ("optimizer", args.get("optimizer")),
                       ("batch_size", batch), ("weight_decay", args.get("weight_decay")),
                       ("epoch", obj.get("epoch")), ("seed", args.get("seed"))):
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
    lowrank = obj.get("lowrank")
    if isinstance(lowrank, Mapping):
        how = lowrank.get("rank_ratio") if lowrank.get("rank_ratio") is not None else f"E={lowrank.get('energy')}"
        out["lowrank"] = f"low-rank {how}" + (", retrained" if args.get("init_from") else "")
    if isinstance(args.get("sam"), int | float) and not isinstance(args.get("sam"), bool):
        out["sam"] = f"{'ASAM' if args.get('sam_adaptive') else 'SAM'} rho={args['sam']:g}"
    if args.get("teacher"):
        out["distilled"] = f"distilled (T={args.get('kd_temperature', 0):g}, alpha={args.get('kd_alpha', 0):g})"
    return out
