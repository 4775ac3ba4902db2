"""A curve between two minimizers: a quadratic Bezier curve or a polygonal chain through one bend,
its file (with the ends' checksums), and the network that runs at a point of it.
"""

from __future__ import annotations

import copy
import hashlib
import json
import os
from collections.abc import Mapping, Sequence

import torch
from torch import nn

from landscape.errors import LandscapeError
from landscape.io.checkpoint import Checkpoint, read_checkpoint, save_checkpoint, sha256
from landscape.io.files import check_output
from landscape.space.params import tensors_checksum

KINDS = ("bezier", "polychain")
PATHS = ("curve", "line")


FORMAT = "landscape-curve"
FORMAT_VERSION = 1


def _check_t(t: float) -> float:
    t = float(t)
    if not 0.0 <= t <= 1.0:  # also refuses NaN
        raise LandscapeError(f"t must lie in [0, 1], got {t:g}")
    return t


def coefficients(kind: str, t: float) -> tuple[float, float, float]:
    """The weights of (a, bend, b) at ``t``: Bezier ``((1-t)^2, 2t(1-t), t^2)``; polychain
    ``(1-2t, 2t, 0)`` up to the bend at t = 1/2, then ``(0, 2-2t, 2t-1)``."""
    t = _check_t(t)
    if kind == "bezier":
        return (1 - t) ** 2, 2 * t * (1 - t), t * t
    if kind == "polychain":
        return (1 - 2 * t, 2 * t, 0.0) if t < 0.5 else (0.0, 2 - 2 * t, 2 * t - 1)
    raise LandscapeError(f"the curve kind must be one of {', '.join(KINDS)}, got {kind!r}")


def _float_state(state: Mapping[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    return {k: v.detach().cpu().clone() for k, v in state.items()}


def check_ends(a: Mapping[str, torch.Tensor], b: Mapping[str, torch.Tensor], what: str = "the two ends") -> None:
    """Refuse two state dicts that are not of one architecture: other names, shapes or dtypes."""
    only_a, only_b = [k for k in a if k not in b], [k for k in b if k not in a]
    if only_a or only_b:
        names = ", ".join((only_a or only_b)[:3])
        raise LandscapeError(f"{what} are not of one architecture: only one of them has {names}")
    bad = [f"{k} {tuple(a[k].shape)} vs {tuple(b[k].shape)}" for k in a if tuple(a[k].shape) != tuple(b[k].shape)]
    if bad:
        raise LandscapeError(f"{what} differ in shape: {', '.join(bad[:3])}")
    bad = [k for k in a if a[k].dtype != b[k].dtype]
    if bad:
        raise LandscapeError(f"{what} differ in dtype at {', '.join(bad[:3])}")


class Curve:
    """A curve theta(t), t in [0, 1], from ``a`` (t = 0) to ``b`` (t = 1) through one ``bend``.

    ``a``, ``b``: the ends' state dicts (fixed). ``bend``: the bend's tensors with the same names
    (default: the midpoint of the ends, where training starts). ``params``: the names that
    training moves (the network's parameters; default all floating-point tensors); the others
    (BatchNorm running statistics) follow the curve from the midpoint and are re-estimated at
    every evaluated t. ``model``: a network of the ends' architecture (a template, not changed).
    ``meta``: what the curve's file records (architecture, data, training settings, the ends'
    files and SHA-256).
    """

    def __init__(self, a: Mapping[str, torch.Tensor], b: Mapping[str, torch.Tensor],
                 bend: Mapping[str, torch.Tensor] | None = None, kind: str = "bezier", *,
                 params: Sequence[str] | None = None, model: nn.Module | None = None, meta: Mapping | None = None):
        if kind not in KINDS:
            raise LandscapeError(f"the curve kind must be one of {', '.join(KINDS)}, got {kind!r}")
        check_ends(a, b)
        self.kind = kind
        self.a, self.b = _float_state(a), _float_state(b)
        floats = [k for k, v in self.a.items() if v.is_floating_point()]
        if bend is None:
            bend = {k: (self.a[k] + self.b[k]) / 2 for k in floats}
        else:
            check_ends({k: self.a[k] for k in floats}, {k: v for k, v in bend.items()}, "the bend and the ends")
        self.bend = {k: bend[k].detach().cpu().clone().to(self.a[k].dtype) for k in floats}
        self.params = tuple(params) if params is not None else tuple(floats)
        missing = [k for k in self.params if k not in self.bend]
        if missing:
            raise LandscapeError(f"the curve has no floating-point tensor {', '.join(missing[:3])} to train")
        self.model = model
        self.meta = dict(meta or {})

    @classmethod
    def between(cls, model_a: nn.Module, model_b: nn.Module, kind: str = "bezier", meta: Mapping | None = None
                ) -> Curve:
        """The curve between two networks of one architecture, its bend at their midpoint."""
        if type(model_a) is not type(model_b):
            raise LandscapeError(f"the two ends are not of one architecture: {type(model_a).__name__} and "
                                 f"{type(model_b).__name__}")
        params = [k for k, p in model_a.named_parameters() if p.is_floating_point()]
        return cls(model_a.state_dict(), model_b.state_dict(), kind=kind, params=params, model=model_a, meta=meta)

    @property
    def names(self) -> list[str]:
        return list(self.a)

    def _combine(self, weights: tuple[float, float, float], t: float) -> dict[str, torch.Tensor]:
        if t == 0.0:
            return {k: v.clone() for k, v in self.a.items()}
        if t == 1.0:
            return {k: v.clone() for k, v in self.b.items()}
        ca, cm, cb = weights
        out = {}
        for k, va in self.a.items():
            if k in self.bend:
                out[k] = ca * va + cm * self.bend[k] + cb * self.b[k]
            else:  # integer buffers (BatchNorm's step counter): the nearer end's
                out[k] = (va if t < 0.5 else self.b[k]).clone()
        return out

    def theta(self, t: float) -> dict[str, torch.Tensor]:
        """The network's tensors at ``t``, named as the ends' (``theta(0)`` is ``a``, ``theta(1)`` is ``b``,
        exactly)."""
        return self._combine(coefficients(self.kind, t), float(t))

    def line(self, t: float) -> dict[str, torch.Tensor]:
        """The straight line's point ``(1-t) a + t b`` (ends exact), for comparison."""
        t = _check_t(t)
        return self._combine((1 - t, 0.0, t), t)

    def point(self, path: str, t: float) -> dict[str, torch.Tensor]:
        """``theta(t)`` for ``path="curve"``, ``line(t)`` for ``"line"``."""
        if path not in PATHS:
            raise LandscapeError(f"the path must be one of {', '.join(PATHS)}, got {path!r}")
        return self.theta(t) if path == "curve" else self.line(t)

    def network(self) -> nn.Module:
        """A fresh copy of the architecture (from :attr:`model`), at ``a``."""
        if self.model is None:
            raise LandscapeError("the curve has no network (give `model`, or load it with an architecture)")
        net = copy.deepcopy(self.model)
        net.load_state_dict(self.a)
        return net

    def checksum(self) -> str:
        """SHA-256 of the kind, the ends and the bend: the identity of the curve's values."""
        h = hashlib.sha256(self.kind.encode())
        for state in (self.a, self.bend, self.b):
            h.update(tensors_checksum(state).encode())
        return h.hexdigest()

    # -- the file

    def state(self) -> dict:
        """The curve as a checkpoint dict of tensors and plain values (``weights_only`` loadable).
        ``state_dict`` holds ``a``, so that any command taking a checkpoint reads the curve file
        as the network ``a``."""
        return {"format": FORMAT, "format_version": FORMAT_VERSION, "kind": self.kind,
                "state_dict": self.a, "end_b": self.b, "bend": self.bend, "params": list(self.params),
                "curve_sha256": self.checksum(), **_plain(self.meta)}

    def save(self, path: str | os.PathLike) -> str:
        """Write the curve to ``path`` (replaced atomically, with the checksum of every entry); returns the path."""
        return save_checkpoint(check_output(os.fspath(path)), self.state())


def _plain(meta: Mapping) -> dict:
    """``meta`` with values a ``weights_only`` load accepts (str, numbers, bools, lists, dicts)."""
    return json.loads(json.dumps(dict(meta), default=str))


def load_curve(source: str | os.PathLike | Checkpoint, model: nn.Module | None = None) -> Curve:
    """A curve from its file (``torch.load(weights_only=True)``), or from that file read already
    (a :class:`landscape.io.checkpoint.Checkpoint`). Its network is ``model`` (None: none; the
    commands build the architecture the file records, :func:`landscape.jobs.connect.read_curve`)."""
    ckpt = source if isinstance(source, Checkpoint) else read_checkpoint(os.fspath(source))
    path = ckpt.path
    obj = {**ckpt.meta, "state_dict": ckpt.state_dict}
    if obj.get("format") != FORMAT:
        raise LandscapeError(f"{path!r} is not a curve file (written by landscape-connect or Curve.save)")
    if int(obj.get("format_version", 0)) > FORMAT_VERSION:
        raise LandscapeError(f"{path!r} is a curve file of a newer landscape (format {obj['format_version']})")
    if not ckpt.checksummed and not obj.get("curve_sha256"):
        raise LandscapeError(f"{path!r} is a curve file that records no checksum: it cannot be verified")
    missing = [k for k in ("kind", "end_b", "bend", "params") if k not in obj]
    if missing:
        raise LandscapeError(f"{path!r} is not a whole curve file: it has no {', '.join(map(repr, missing))} entry")
    meta = {k: v for k, v in obj.items() if k not in ("format", "format_version", "kind", "state_dict", "end_b",
                                                      "bend", "params", "curve_sha256")}
    curve = Curve(obj["state_dict"], obj["end_b"], obj["bend"], str(obj["kind"]), params=obj["params"], meta=meta)
    if obj.get("curve_sha256") and obj["curve_sha256"] != curve.checksum():
        raise LandscapeError(f"{path!r} is damaged: its tensors do not match the checksum it records")
    curve.model = model
    return curve


def check_ends_files(curve: Curve, paths: Sequence[str | os.PathLike], source: str = "the curve") -> None:
    """Refuse checkpoints that are not the ends the curve was trained between (by the SHA-256 of
    the files its file records)."""
    recorded = list(curve.meta.get("ends_sha256") or [])
    if len(recorded) != 2:
        raise LandscapeError(f"{source} records no checksums of its ends' files")
    for label, p, sha in zip("ab", paths, recorded, strict=False):
        if not os.path.isfile(p):
            raise LandscapeError(f"checkpoint {os.fspath(p)!r} does not exist")
        if sha256(p) != sha:
            raise LandscapeError(f"{os.fspath(p)!r} is not the end {label} {source} was trained from "
                                 "(its SHA-256 differs from the one recorded)")


class CurveModel(nn.Module):
    """The network along a curve, for a training loop: its only trainable parameters are the
    bend's (``bend``), and in training mode every forward call draws t ~ U[0, 1] (the global
    torch generator) and runs the network at theta(t) with :func:`torch.func.functional_call`;
    in eval mode it runs at :attr:`t`. BatchNorm layers in training mode use the batch's
    statistics, so the network's running statistics are only a by-product (re-estimated at every
    t when the curve is evaluated)."""

    def __init__(self, curve: Curve, t: float = 0.5):
        super().__init__()
        self.kind, self.names, self.t = curve.kind, list(curve.params), _check_t(t)
        self.net = curve.network()
        for p in self.net.parameters():
            p.requires_grad_(False)
        self.bend = nn.ParameterList([nn.Parameter(curve.bend[k].clone()) for k in self.names])
        for i, k in enumerate(self.names):
            self.register_buffer(f"end_a_{i}", curve.a[k].clone(), persistent=False)
            self.register_buffer(f"end_b_{i}", curve.b[k].clone(), persistent=False)

    def params_at(self, t: float) -> dict[str, torch.Tensor]:
        ca, cm, cb = coefficients(self.kind, t)
        return {k: ca * getattr(self, f"end_a_{i}") + cm * self.bend[i] + cb * getattr(self, f"end_b_{i}")
                for i, k in enumerate(self.names)}

    def forward(self, *args, **kwargs):
        t = float(torch.rand(())) if self.training else self.t
        return torch.func.functional_call(self.net, self.params_at(t), args, kwargs)

    def curve(self, like: Curve) -> Curve:
        """``like`` with this model's bend."""
        bend = dict(like.bend)
        bend.update({k: p.detach().cpu().clone() for k, p in zip(self.names, self.bend, strict=True)})
        return Curve(like.a, like.b, bend, like.kind, params=like.params, model=like.model, meta=like.meta)
