"""Mode-connecting curves between two minimizers (Garipov et al., NeurIPS'18; Draxler et al., ICML'18).

Two independently trained networks ``a`` and ``b`` are usually separated by a barrier on the
straight line between them, yet joined by a simple curve of low loss: a quadratic Bezier curve

    theta(t) = (1-t)^2 a + 2t(1-t) bend + t^2 b,

or a polygonal chain a -> bend -> b, with one trained *bend* and the ends fixed. This module holds
the curve (:class:`Curve`), trains its bend (:func:`train_curve`: t ~ U[0, 1] at every batch, the
network run at theta(t) with :func:`torch.func.functional_call`, only the bend stepped), evaluates
the curve and the straight line along t as a 1D grid of the surface engine (:func:`evaluate`:
MPI-parallel, resumable, BatchNorm statistics re-estimated at every t), and builds the plane
through a, b and the bend (:func:`plane_directions`, :func:`plane_path`).

The barrier of a path is the largest loss along it minus the mean of the ends' losses (Frankle et
al.; Garipov et al.): near 0 for a valley, large for a ridge between the minima.
"""

from __future__ import annotations

import copy
import hashlib
import json
import math
import os
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field

import numpy as np
import torch
from torch import nn

from landscape.batches import as_batches
from landscape.batchnorm import BatchNormRecompute, has_batchnorm
from landscape.errors import LandscapeError
from landscape.files import check_output, replacing
from landscape.provenance import environment

KINDS = ("bezier", "polychain")
PATHS = ("curve", "line")
FORMAT = "landscape-curve"
FORMAT_VERSION = 1
DEFAULT_BATCH_SIZE = 256


# ------------------------------------------------------------------------------------- the curve


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


def tensors_sha256(state: Mapping[str, torch.Tensor]) -> str:
    """SHA-256 of named tensors (names, dtypes, shapes, bytes)."""
    from landscape.engine import tensors_checksum

    return tensors_checksum(state)


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
            h.update(tensors_sha256(state).encode())
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
        """Write the curve to ``path`` (replaced atomically); returns the path."""
        path = check_output(os.fspath(path))
        with replacing(path) as tmp:
            torch.save(self.state(), tmp)
        return path


def _plain(meta: Mapping) -> dict:
    """``meta`` with values a ``weights_only`` load accepts (str, numbers, bools, lists, dicts)."""
    return json.loads(json.dumps(dict(meta), default=str))


def load_curve(path: str | os.PathLike, model: nn.Module | None = None) -> Curve:
    """A curve from its file (``torch.load(weights_only=True)``). The network is ``model``, else
    the recorded architecture built from the zoo or ``package.module:callable``."""
    from landscape.checkpoint import read_checkpoint

    path = os.fspath(path)
    ckpt = read_checkpoint(path)
    obj = {**ckpt.meta, "state_dict": ckpt.state_dict}
    if obj.get("format") != FORMAT:
        raise LandscapeError(f"{path!r} is not a curve file (written by landscape-connect or Curve.save)")
    if int(obj.get("format_version", 0)) > FORMAT_VERSION:
        raise LandscapeError(f"{path!r} is a curve file of a newer landscape (format {obj['format_version']})")
    meta = {k: v for k, v in obj.items() if k not in ("format", "format_version", "kind", "state_dict", "end_b",
                                                      "bend", "params", "curve_sha256")}
    curve = Curve(obj["state_dict"], obj["end_b"], obj["bend"], str(obj["kind"]), params=obj["params"], meta=meta)
    if obj.get("curve_sha256") and obj["curve_sha256"] != curve.checksum():
        raise LandscapeError(f"{path!r} is damaged: its tensors do not match the checksum it records")
    if model is None and meta.get("arch"):
        from landscape.models import build_model

        model = build_model(str(meta["arch"]), num_classes=int(meta.get("num_classes") or 10),
                            in_channels=int(meta.get("in_channels") or 3))
        from landscape.checkpoint import load_into_

        load_into_(model, curve.a, source=f"curve {path!r}")
    curve.model = model
    return curve


def check_ends_files(curve: Curve, paths: Sequence[str | os.PathLike], source: str = "the curve") -> None:
    """Refuse checkpoints that are not the ends the curve was trained between (by the SHA-256 of
    the files its file records)."""
    from landscape.checkpoint import sha256

    recorded = list(curve.meta.get("ends_sha256") or [])
    if len(recorded) != 2:
        raise LandscapeError(f"{source} records no checksums of its ends' files")
    for label, p, sha in zip("ab", paths, recorded, strict=False):
        if not os.path.isfile(p):
            raise LandscapeError(f"checkpoint {os.fspath(p)!r} does not exist")
        if sha256(p) != sha:
            raise LandscapeError(f"{os.fspath(p)!r} is not the end {label} {source} was trained from "
                                 "(its SHA-256 differs from the one recorded)")


# ----------------------------------------------------------------------------------- training


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


@dataclass(frozen=True)
class CurveTraining:
    """How the bend is trained: the optimizer (a name of :data:`landscape.training.OPTIMIZERS`,
    ``sgd`` or ``adam``, or ``package.module:callable``), its rate, momentum and weight decay,
    batches, epochs and seed. The rate follows Garipov et al.'s schedule (:meth:`lr_at`):
    constant for half the epochs, then linearly down to ``lr * final_lr`` at 90 %, constant after."""

    epochs: int = 20
    lr: float = 0.05
    optimizer: str = "sgd"
    momentum: float = 0.9
    weight_decay: float = 0.0
    batch_size: int = 128
    final_lr: float = 0.01
    seed: int = 0
    nesterov: bool = False

    def __post_init__(self):
        from landscape.training import OPTIMIZERS

        checks = [(self.epochs >= 1, f"`epochs` must be positive, got {self.epochs}"),
                  (self.lr > 0 and math.isfinite(self.lr), f"`lr` must be positive, got {self.lr}"),
                  (self.optimizer in OPTIMIZERS or ":" in self.optimizer,
                   f"`optimizer` must be one of {', '.join(OPTIMIZERS)} or package.module:callable, "
                   f"got {self.optimizer!r}"),
                  (self.momentum >= 0, f"`momentum` must be >= 0, got {self.momentum}"),
                  (self.weight_decay >= 0, f"`weight_decay` must be >= 0, got {self.weight_decay}"),
                  (self.batch_size >= 1, f"`batch_size` must be positive, got {self.batch_size}"),
                  (0 < self.final_lr <= 1, f"`final_lr` must be in (0, 1], got {self.final_lr}")]
        for ok, message in checks:
            if not ok:
                raise LandscapeError(message)

    def lr_at(self, epoch: int) -> float:
        """The rate of (1-based) ``epoch``: the training loop's schedule."""
        f = (epoch - 1) / self.epochs
        if f <= 0.5:
            return self.lr
        if f <= 0.9:
            return self.lr * (1.0 - (f - 0.5) / 0.4 * (1.0 - self.final_lr))
        return self.lr * self.final_lr

    def settings(self) -> dict:
        """The settings as plain values (recorded in the curve file and the run folder)."""
        return dict(self.__dict__)


def train_curve(model_a: nn.Module, model_b: nn.Module, data, *, kind: str = "bezier", epochs: int = 20,
                lr: float = 0.05, optimizer: str = "sgd", momentum: float = 0.9, weight_decay: float = 0.0,
                batch_size: int = 128, seed: int = 0, loss_fn: str | Callable = "crossentropy",
                device: str | torch.device | None = "cpu", test_data=None, folder: str | os.PathLike | None = None,
                resume: bool = False, overwrite: bool = False, progress: bool = False,
                on_epoch_end: Callable[[int, dict], None] | None = None, meta: Mapping | None = None) -> Curve:
    """Train the bend of a ``kind`` curve from ``model_a`` to ``model_b`` (ends fixed) on ``data``
    (a Dataset, ``(X, y)``, a loader, or ``{"train": ...}``) with the project's training loop
    (:class:`landscape.training.Loop` on a :class:`CurveModel`): every batch draws t ~ U[0, 1] and
    steps the bend on the loss at theta(t). The log's epoch 0 is the loss at t = 1/2 before training
    (the straight line's midpoint), ``test_data`` is evaluated there too. ``folder``: a run folder
    (checkpoints, ``log.csv``; continued bit for bit with ``resume`` after an interruption, even
    ``kill -9``). Returns the trained :class:`Curve`; its ``meta`` records the settings and the log."""
    from landscape.evaluate import resolve_device
    from landscape.training import Loop, LoopConfig, RunFolder, make_optimizer

    settings = CurveTraining(epochs, lr, optimizer, momentum, weight_decay, batch_size, seed=seed)
    curve = Curve.between(model_a, model_b, kind, meta=meta)
    if isinstance(data, Mapping) and "train" in data:
        data = data["train"]
    net = CurveModel(curve).to(resolve_device(device))
    opt = make_optimizer(optimizer, list(net.bend), settings)
    record = {"kind": kind, "ends_tensors_sha256": [tensors_sha256(curve.a), tensors_sha256(curve.b)],
              "loss": loss_fn if isinstance(loss_fn, str) else "custom", **settings.settings()}
    run = RunFolder(folder, record, resume=resume, overwrite=overwrite) if folder is not None else None
    try:
        loop = Loop(net, data, opt, schedule=settings.lr_at, test_data=test_data, loss=loss_fn, folder=run,
                    config=LoopConfig(epochs=epochs, batch_size=batch_size, seed=seed, save_every=epochs,
                                      progress=progress))
        history = loop.run(on_epoch_end)
    finally:
        if run is not None:
            run.close()
    trained = net.curve(curve)
    trained.model = model_a
    trained.meta = {**curve.meta, "training": record, "history": history}
    return trained


# --------------------------------------------------------------------------------- evaluation


def barrier(values: np.ndarray) -> float:
    """The largest value along a path minus the mean of its ends (NaN when any is missing)."""
    v = np.asarray(values, dtype=float)
    if v.size < 2 or not np.isfinite(v).all():
        return float("nan")
    return float(v.max() - (v[0] + v[-1]) / 2)


def value_names(path: str, split: str) -> tuple[str, str]:
    """The arrays of a path's loss and accuracy on ``split`` in a path file: the curve's are the
    plain ``{split}_loss``/``{split}_acc`` (so every view of a 1D surface draws the curve), the
    straight line's ``line_{split}_loss``/``line_{split}_acc``."""
    prefix = "" if path == "curve" else f"{path}_"
    return f"{prefix}{split}_loss", f"{prefix}{split}_acc"


@dataclass(frozen=True)
class PathResult:
    """Loss and accuracy along t of the curve and of the straight line: ``loss[path]``,
    ``acc[path]`` (%) and ``barrier[path]`` (loss) on the first split; every split's in
    ``by_split[split]`` as ``{"loss": {...}, "acc": {...}, "barrier": {...}, "err_barrier": {...}}``;
    the surface file's contents in ``surface``."""

    t: np.ndarray
    loss: dict
    acc: dict
    barrier: dict
    split: str
    by_split: dict = field(default_factory=dict)
    surface: object = None
    path: str | None = None


def path_result(surface) -> PathResult:
    """A :class:`PathResult` from a path surface (computed, or read from its file)."""
    splits = [s for s in str(surface.attrs.get("split", "train")).split(",") if s]
    by_split = {}
    for s in splits:
        entry: dict = {"loss": {}, "acc": {}, "barrier": {}, "err_barrier": {}}
        for p in PATHS:
            lname, aname = value_names(p, s)
            entry["loss"][p] = np.asarray(surface.values[lname])
            entry["acc"][p] = np.asarray(surface.values.get(aname, np.full_like(entry["loss"][p], np.nan)))
            entry["barrier"][p] = barrier(entry["loss"][p])
            entry["err_barrier"][p] = barrier(100.0 - entry["acc"][p])
        by_split[s] = entry
    first = by_split[splits[0]]
    return PathResult(np.asarray(surface.x), first["loss"], first["acc"], first["barrier"], splits[0], by_split,
                      surface, surface.path)


def barrier_attrs(result: PathResult) -> dict:
    """The barriers as file attributes: ``barrier_{path}_{split}_loss`` and ``..._err`` (%)."""
    out = {}
    for s, entry in result.by_split.items():
        for p in PATHS:
            out[f"barrier_{p}_{s}_loss"] = entry["barrier"][p]
            out[f"barrier_{p}_{s}_err"] = entry["err_barrier"][p]
    return out


class _PathValues:
    """One path's loss and accuracy on one split: the unit of work the engine hands out."""

    def __init__(self, path: str, split: str, evaluator):
        self.path, self.split, self.evaluator = path, split, evaluator
        self.names = value_names(path, split)

    def config(self) -> dict:
        ev = self.evaluator
        return {"path": self.path, "split": self.split, "loss": ev.loss_name, "data": ev.batches.fingerprint(),
                "samples": ev.n, "batch_size": ev.batch_size}


def t_values(t: int | Sequence[float] | np.ndarray) -> np.ndarray:
    """``t`` as the points of the path: a count (evenly spaced from 0 to 1) or the values."""
    if isinstance(t, int | np.integer):
        if t < 2:
            raise LandscapeError(f"a path needs at least 2 points, got {t}")
        return np.linspace(0.0, 1.0, int(t))
    values = np.asarray(t, dtype=float).ravel()
    if values.size < 2:
        raise LandscapeError("a path needs at least 2 values of t")
    bad = values[~((values >= 0) & (values <= 1))]
    if bad.size:
        raise LandscapeError(f"t must lie in [0, 1], got {bad[0]:g}")
    if np.any(np.diff(values) <= 0):
        raise LandscapeError("the values of t must increase")
    return values


def evaluate(curve: Curve, data, t: int | Sequence[float] = 41, *, loss_fn: str | Callable = "crossentropy",
             batch_size: int = DEFAULT_BATCH_SIZE, bn_recompute: int | None = None, bn_data=None,
             device: str | torch.device | None = "cpu", out: str | os.PathLike | None = None,
             overwrite: bool = False, comm=None, progress: bool = False, provenance: Mapping | None = None,
             threads: int | None = None) -> PathResult:
    """Loss and accuracy of the curve and of the straight line at the values ``t`` (a count:
    evenly spaced in [0, 1]) on ``data`` (one split, or ``{split: data}``): a 1D grid of the
    surface engine, so MPI-parallel (every rank calls this) and resumable in ``out``.

    BatchNorm statistics are re-estimated at every t and path from ``bn_recompute`` batches of
    ``bn_data`` (default: all batches of the training split, else of the first); a network
    without BatchNorm needs none. The barriers go into the file's attributes.
    """
    from landscape.engine import by_split, run_points
    from landscape.evaluate import Evaluator, resolve_device
    from landscape.parallel import collective, local_rank_and_size, world
    from landscape.surface_file import write_surface
    from landscape.threads import threads as using_threads

    comm = comm or world()
    ts = t_values(t)
    splits = by_split(data)
    net = curve.network()
    dev = resolve_device(device)
    with using_threads(threads, local_rank_and_size(comm)[1]):
        def setup():
            evaluators = {s: Evaluator(net, d, loss_fn, "auto", batch_size, dev, channels_last=False)
                          for s, d in splits.items()}
            bn = None
            n_bn = bn_recompute
            if has_batchnorm(net):
                source = bn_data if bn_data is not None else splits.get("train", next(iter(splits.values())))
                batches = as_batches(source, dev, batch_size)
                if n_bn is None:
                    n_bn = math.ceil(batches.n / batch_size)
                if n_bn < 1:
                    raise LandscapeError("a network with BatchNorm needs its statistics re-estimated along a path: "
                                         "`bn_recompute` must be at least 1")
                bn = BatchNormRecompute(net, batches, n_bn)
            return evaluators, bn

        evaluators, bn = collective(comm, setup)
        metrics = [_PathValues(p, s, ev) for p in PATHS for s, ev in evaluators.items()]
        coords = [ts]
        inputs = {"grid": [f"t: {len(ts)} values"],
                  "coordinates": hashlib.sha256(np.asarray(ts, "<f8").tobytes()).hexdigest(),
                  "model": f"{type(net).__module__}.{type(net).__qualname__}:{curve.checksum()}",
                  "bn_recompute": bn.config() if bn is not None else 0,
                  "metrics": {n: {"class": "path", **m.config()} for m in metrics for n in m.names}}
        attrs = {**environment(), "kind": "connect_path", "curve_kind": curve.kind, "curve_sha256": curve.checksum(),
                 "split": ",".join(splits), "xlabel": "t", "samples": next(iter(evaluators.values())).n,
                 "loss": next(iter(evaluators.values())).loss_name, "batch_size": batch_size,
                 "bn_recompute": bn.num_batches if bn is not None else 0, "mpi_ranks": comm.size,
                 "command": "landscape.connect.evaluate",
                 **{k: v for k, v in curve.meta.items() if isinstance(v, str | int | float | bool)},
                 **dict(provenance or {})}

        def job(p: int, needed: Sequence[int]) -> dict:
            values: dict[str, float] = {}
            for path in PATHS:
                wanted = [metrics[i] for i in needed if metrics[i].path == path]
                if not wanted:
                    continue
                net.load_state_dict(curve.point(path, float(ts[p])))
                if bn is not None:
                    bn()
                for m in wanted:
                    got = m.evaluator()
                    values[m.names[0]] = got["loss"]
                    if len(m.names) > 1:
                        values[m.names[1]] = got.get("acc", float("nan"))
            return values

        out = os.fspath(out) if out is not None else None
        surf = run_points(coords, metrics, job, inputs=inputs, attrs=attrs, comm=comm, out=out,
                          overwrite=overwrite, progress=progress, what="path")
    result = path_result(surf)
    surf.attrs.update(barrier_attrs(result))
    if out is not None and comm.rank == 0:
        write_surface(out, surf)
    return result


# ------------------------------------------------------------------------------------ the plane


def plane_directions(curve: Curve) -> tuple[list[dict[str, torch.Tensor]], tuple[float, float]]:
    """The plane through a, b and the bend, as two orthogonal directions of equal length from ``a``
    over the curve's parameters (Garipov et al.'s figures): x along ``b - a`` (b at (1, 0)), y along
    the bend's component orthogonal to it, so that distances and angles in the plane are true in
    units of ``|b - a|``. Returns the directions and the bend's coordinates ``(xb, yb)``, yb > 0."""
    names = list(curve.params)
    u = torch.cat([(curve.b[k] - curve.a[k]).double().ravel() for k in names])
    v = torch.cat([(curve.bend[k] - curve.a[k]).double().ravel() for k in names])
    uu = float(u @ u)
    if uu == 0.0:
        raise LandscapeError("the two ends are the same network: there is no plane through them")
    xb = float(v @ u) / uu
    w = v - xb * u
    if float(w @ w) <= 1e-24 * max(float(v @ v), uu):
        raise LandscapeError("the bend lies on the straight line between the ends (an untrained curve): "
                             "there is no plane through the three")
    yb = math.sqrt(float(w @ w) / uu)
    w = w / yb  # as long as b - a
    dx, dy, offset = {}, {}, 0
    for k in names:
        n = curve.a[k].numel()
        dx[k] = (curve.b[k] - curve.a[k]).float()
        dy[k] = w[offset:offset + n].reshape(curve.a[k].shape).float()
        offset += n
    return [dx, dy], (xb, yb)


@dataclass(frozen=True)
class PlanePath:
    """The curve and the straight line in the plane of :func:`plane_directions`: ``x``/``y`` of
    the curve at ``t``, and the points ``a`` (0, 0), ``b`` (1, 0) and ``bend``; ``curve_sha256``
    names the curve (a plane's surface file records it)."""

    t: np.ndarray
    x: np.ndarray
    y: np.ndarray
    a: tuple[float, float]
    b: tuple[float, float]
    bend: tuple[float, float]
    kind: str
    curve_sha256: str = ""


def plane_path(curve: Curve, points: int = 101) -> PlanePath:
    """The curve's coordinates in its plane (exact: theta(t) - a = c_bend (bend - a) + c_b (b - a))."""
    _, (xb, yb) = plane_directions(curve)
    ts = np.linspace(0.0, 1.0, points)
    cs = np.array([coefficients(curve.kind, t) for t in ts])
    x = cs[:, 2] + cs[:, 1] * xb
    y = cs[:, 1] * yb
    return PlanePath(ts, x, y, (0.0, 0.0), (1.0, 0.0), (xb, yb), curve.kind, curve.checksum())


__all__ = [
    "KINDS", "Curve", "CurveModel", "CurveTraining", "PathResult", "PlanePath", "barrier", "barrier_attrs",
    "check_ends", "check_ends_files", "coefficients", "evaluate", "load_curve", "path_result", "plane_directions",
    "plane_path", "t_values", "train_curve", "value_names",
]
