"""Sensitivity to pruning (Li et al., Sec. 3.2): prune each conv layer alone at increasing
fractions and evaluate without retraining; and the sorted filter norms behind it (Fig. 2(a)).

The (layer, fraction) pairs are independent points: :func:`sensitivity` hands them out over MPI
ranks with :func:`landscape.parallel.map_points` (serially without MPI) and rank 0 keeps one
HDF5 file, rewritten atomically every few seconds, so a killed run resumes with only the missing
pairs. The file holds ``layers``, ``ratios``, ``accuracy`` and ``loss`` (layers x ratios, NaN
until computed), a ``completed`` mask, ``kept``, ``filters`` and ``stages``, and provenance
attributes; a rerun with other inputs (model, data, layers, ratios, strategy, loss) is refused.
"""

from __future__ import annotations

import copy
import hashlib
import os
import sys
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

import h5py
import numpy as np
import torch
from torch import nn

from landscape.data import Dataset
from landscape.errors import LandscapeError
from landscape.files import remove_stale_temporaries, replacing
from landscape.parallel import SerialComm, abort_on_error, first_error, map_points
from landscape.prune.counts import conv_output_shapes
from landscape.prune.graph import ChannelGraph, is_conv, trace
from landscape.prune.plans import kept
from landscape.prune.removal import STRATEGIES, _group_fractions, _prune, filter_scores

PROG = "landscape-prune"
# Attributes a resumed run must agree on (besides the layers and ratios themselves).
CONFIG_KEYS = ("model_sha256", "data_sha256", "strategy", "loss", "num_samples")


@dataclass(frozen=True, eq=False)
class SensitivityResult:
    """Accuracy (%) and loss after pruning each layer alone by each fraction, unretrained."""

    layers: tuple[str, ...]
    ratios: np.ndarray  # (R,)
    accuracy: np.ndarray  # (L, R), NaN where not computed
    loss: np.ndarray  # (L, R)
    baseline_accuracy: float
    baseline_loss: float
    filters: tuple[int, ...] = ()  # each layer's number of filters
    stages: tuple[int, ...] = ()  # each layer's stage (0: the largest feature maps)
    completed: np.ndarray | None = None  # (L, R) bool
    attrs: dict = field(default_factory=dict)


def filter_norms(
    model: nn.Module, layers: Sequence[str] | None = None, normalize: bool = True
) -> dict[str, np.ndarray]:
    """Each conv layer's filter L1 norms (sum of absolute weights) sorted in decreasing order,
    divided by the largest when ``normalize`` (the paper's Fig. 2(a)). ``layers``: default all
    convs (depthwise ones excepted)."""
    modules = dict(model.named_modules())
    if layers is None:
        layers = [n for n, m in modules.items() if is_conv(m) and not (m.groups > 1 and m.groups == m.in_channels)]
    out = {}
    for name in layers:
        if name not in modules or not is_conv(modules[name]):
            raise LandscapeError(f"{name!r} is not a conv layer of the model")
        s = filter_scores(modules[name]).numpy()
        s = np.sort(s)[::-1].copy()
        out[name] = s / s[0] if normalize and s.size and s[0] > 0 else s
    return out


# ------------------------------------------------------------------------------ helpers


def _loss_acc(result) -> tuple[float, float]:
    """The evaluator's answer as ``(loss, accuracy)``: a tuple, or a mapping with ``loss`` and
    ``acc`` (or ``accuracy``)."""
    if isinstance(result, Mapping):  # no accuracy for regression targets: NaN, as the tuple form
        return float(result["loss"]), float(result.get("acc", result.get("accuracy", float("nan"))))
    loss, acc = result[0], result[1]
    return float(loss), float(acc)


def state_digest(model: nn.Module) -> str:
    """SHA-256 of a model's state dict (names, shapes, dtypes and bytes)."""
    h = hashlib.sha256()
    for name, t in model.state_dict().items():
        t = t.detach().cpu().contiguous()
        h.update(f"{name}:{tuple(t.shape)}:{t.dtype}".encode())
        h.update(t.reshape(-1).view(torch.uint8).numpy().tobytes())
    return h.hexdigest()


def data_digest(data: Dataset) -> str:
    """SHA-256 of a dataset's inputs and targets."""
    h = hashlib.sha256()
    for t in (data.x, data.y):
        t = t.detach().cpu().contiguous()
        h.update(f"{tuple(t.shape)}:{t.dtype}".encode())
        h.update(t.reshape(-1).view(torch.uint8).numpy().tobytes())
    return h.hexdigest()


def check_ratios(ratios: Sequence[float]) -> np.ndarray:
    """``ratios`` as a float64 array, after checking they are distinct fractions in [0, 1)."""
    try:
        r = np.asarray([float(v) for v in ratios], dtype=np.float64)
    except (TypeError, ValueError):
        raise LandscapeError(f"ratios must be numbers, got {ratios!r}") from None
    if r.size == 0:
        raise LandscapeError("no ratios to prune by")
    if np.any(~np.isfinite(r)) or r.min() < 0 or r.max() >= 1:
        raise LandscapeError(f"ratios must be fractions in [0, 1), got {r.tolist()}")
    if len(set(r.tolist())) != r.size:
        raise LandscapeError(f"ratios repeat a value: {r.tolist()}")
    return r


def _stages(model: nn.Module, layers: Sequence[str], input_shape: Sequence[int]) -> tuple[int, ...]:
    """Stage of each layer: the rank of its output resolution, largest first."""
    shapes = conv_output_shapes(model, input_shape)
    size = {n: int(np.prod(shapes[n][1:])) if n in shapes else 0 for n in layers}
    order = sorted(set(size.values()), reverse=True)
    return tuple(order.index(size[n]) for n in layers)


def _device_data(data: Dataset, model: nn.Module, device: torch.device) -> Dataset:
    """The data moved to the device once (channels-last for conv nets), for every evaluator."""
    x = data.x.to(device)
    if x.dim() == 4 and any(is_conv(m) for m in model.modules()):
        x = x.contiguous(memory_format=torch.channels_last)
    return Dataset(x, data.y.to(device), data.num_classes, data.name, dict(data.info))


# --------------------------------------------------------------------------------- file


class _State:
    """The mutable arrays of a run in progress (rank 0)."""

    def __init__(self, layers, ratios, filters, stages, kept_, attrs):
        shape = (len(layers), len(ratios))
        self.layers, self.ratios = list(layers), np.asarray(ratios, dtype=np.float64)
        self.filters, self.stages = np.asarray(filters, dtype=np.int64), np.asarray(stages, dtype=np.int64)
        self.kept = np.asarray(kept_, dtype=np.int64).reshape(shape)
        self.accuracy, self.loss = np.full(shape, np.nan), np.full(shape, np.nan)
        self.completed = np.zeros(shape, dtype=bool)
        self.baseline = [np.nan, np.nan]  # loss, accuracy
        self.baseline_done = False
        self.attrs = dict(attrs)

    def result(self) -> SensitivityResult:
        return SensitivityResult(
            tuple(self.layers), self.ratios.copy(), self.accuracy.copy(), self.loss.copy(),
            float(self.baseline[1]), float(self.baseline[0]), tuple(int(f) for f in self.filters),
            tuple(int(s) for s in self.stages), self.completed.copy(), dict(self.attrs),
        )


def _attr(v):
    if isinstance(v, bool | np.bool_):
        return int(v)
    if v is None:
        return ""
    if isinstance(v, str):
        return str(v)  # a plain str: h5py cannot store numpy's fixed-width strings as attributes
    arr = np.asarray(v)
    if arr.dtype.kind in "UO":
        return arr.astype(h5py.string_dtype())
    return v


def _write(path: str, st: _State) -> None:
    with replacing(path) as tmp, h5py.File(tmp, "w") as f:
        f.create_dataset("layers", data=np.array(st.layers, dtype=h5py.string_dtype()))
        f.create_dataset("ratios", data=st.ratios)
        f.create_dataset("accuracy", data=st.accuracy)
        f.create_dataset("loss", data=st.loss)
        f.create_dataset("completed", data=st.completed.astype(np.uint8))
        f.create_dataset("kept", data=st.kept)
        f.create_dataset("filters", data=st.filters)
        f.create_dataset("stages", data=st.stages)
        f.attrs["baseline_loss"] = st.baseline[0]
        f.attrs["baseline_accuracy"] = st.baseline[1]
        f.attrs["baseline_completed"] = int(st.baseline_done)
        for k, v in st.attrs.items():
            f.attrs[k] = _attr(v)
        f.flush()
        os.fsync(f.id.get_vfd_handle())


def _plain(v):
    if isinstance(v, bytes):
        return v.decode()
    if isinstance(v, np.generic):
        return v.item()
    if isinstance(v, np.ndarray):
        return v.tolist()
    return v


def _read_state(path: str) -> _State:
    try:
        with h5py.File(path, "r") as f:
            missing = [k for k in ("layers", "ratios", "accuracy", "loss", "completed") if k not in f]
            if missing:
                raise LandscapeError(f"{path!r} is not a sensitivity file (no {', '.join(missing)})")
            layers = [v.decode() if isinstance(v, bytes) else str(v) for v in f["layers"][()]]
            ratios = f["ratios"][()]
            n = (len(layers), len(ratios))
            get = {k: f[k][()] if k in f else None for k in ("filters", "stages", "kept")}
            attrs = {k: _plain(v) for k, v in f.attrs.items()}
            st = _State(layers, ratios, get["filters"] if get["filters"] is not None else np.zeros(n[0]),
                        get["stages"] if get["stages"] is not None else np.zeros(n[0]),
                        get["kept"] if get["kept"] is not None else np.zeros(n), {})
            st.accuracy, st.loss = f["accuracy"][()].astype(float), f["loss"][()].astype(float)
            st.completed = f["completed"][()].astype(bool)
    except OSError as exc:
        raise LandscapeError(f"{path!r} is not a readable HDF5 file ({exc})") from None
    st.baseline = [float(attrs.pop("baseline_loss", np.nan)), float(attrs.pop("baseline_accuracy", np.nan))]
    st.baseline_done = bool(attrs.pop("baseline_completed", 0))
    st.attrs = attrs
    return st


def read_sensitivity(path: str | os.PathLike) -> SensitivityResult:
    """Read a sensitivity file written by :func:`sensitivity`."""
    path = os.fspath(path)
    if not os.path.isfile(path):
        raise LandscapeError(f"sensitivity file {path!r} does not exist")
    return _read_state(path).result()


def _mismatch(old: _State, new: _State) -> str | None:
    if old.layers != new.layers:
        def names(layers: list[str]) -> str:
            return ", ".join(layers[:4]) + (f" (+{len(layers) - 4} more)" if len(layers) > 4 else "")
        return f"the layers are {names(old.layers)} in the file but {names(new.layers)} now"
    if old.ratios.shape != new.ratios.shape or not np.array_equal(old.ratios, new.ratios):
        return f"the ratios are {old.ratios.tolist()} in the file but {new.ratios.tolist()} now"
    keys = [k for k in new.attrs if k in CONFIG_KEYS or k in new.attrs.get("config_keys", "").split(",")]
    for k in keys:
        if str(old.attrs.get(k, "")) != str(_attr(new.attrs[k])):
            return f"{k} is {old.attrs.get(k, '')!r} in the file but {new.attrs[k]!r} now"
    return None


def _open(out: str, st: _State, overwrite: bool) -> _State:
    folder = os.path.dirname(os.path.abspath(out))
    if not os.path.isdir(folder):
        raise LandscapeError(f"output folder {folder!r} does not exist")
    if not os.access(folder, os.W_OK):
        raise LandscapeError(f"output folder {folder!r} is not writable")
    remove_stale_temporaries(out)
    if os.path.exists(out) and not overwrite:
        try:
            old = _read_state(out)
        except LandscapeError as exc:
            raise LandscapeError(f"{exc}; refusing to replace it without --overwrite") from None
        reason = _mismatch(old, st)
        if reason:
            raise LandscapeError(f"{out!r} holds a sensitivity scan of other inputs ({reason}); use --overwrite "
                                 "to replace it or another --out")
        keep = {k: v for k, v in old.attrs.items() if k in ("created",)}
        old.attrs.update(st.attrs)
        old.attrs.update(keep)
        old.attrs["resumed"] = time.strftime("%Y-%m-%dT%H:%M:%S%z")
        return old
    _write(out, st)
    return st


# ------------------------------------------------------------------------------- the run


def _everywhere(comm, fn):
    """Run ``fn`` on every rank; a LandscapeError on any rank is raised on all (no rank hangs)."""
    value, error = None, None
    with abort_on_error(comm, PROG):
        try:
            value = fn()
        except LandscapeError as exc:
            error = str(exc)
    error = first_error(comm, error)
    if error:
        raise LandscapeError(error)
    return value


def _on_root(comm, fn):
    """Run ``fn`` on rank 0 alone (None elsewhere); its LandscapeError is raised on every rank."""
    value, error = None, None
    if comm.rank == 0:
        with abort_on_error(comm, PROG):
            try:
                value = fn()
            except LandscapeError as exc:
                error = str(exc)
    error = comm.bcast(error, root=0)
    if error:
        raise LandscapeError(error)
    return value


def _validate(model: nn.Module, graph: ChannelGraph, layers, ratios) -> tuple[list[str], np.ndarray, np.ndarray]:
    if layers is None:
        layers = graph.prunable()
        if not layers:
            raise LandscapeError(f"{type(model).__name__} has no conv layer that can be pruned alone")
    layers = [str(n) for n in layers]
    if len(set(layers)) != len(layers):
        raise LandscapeError("the layers repeat a name")
    if not layers:
        raise LandscapeError("no layers to scan")
    filters = np.zeros(len(layers), dtype=np.int64)
    kept_ = np.zeros((len(layers), len(ratios)), dtype=np.int64)
    for i, name in enumerate(layers):
        positive = [r for r in ratios if r > 0] or [0.5]
        _group_fractions(graph, model, {name: max(positive)})  # unknown or not prunable alone: says why
        n = graph.group_of(name).width
        filters[i] = n
        for j, r in enumerate(ratios):
            kept_[i, j] = kept(n, r)
            if kept_[i, j] < 1:
                raise LandscapeError(f"pruning {r:g} of the {n} filters of {name!r} removes every filter")
    return layers, filters, kept_


def sensitivity(
    model: nn.Module,
    data: Dataset,
    ratios: Sequence[float],
    layers: Sequence[str] | None = None,
    strategy: str = "independent",
    comm=None,
    out: str | os.PathLike | None = None,
    *,
    loss: str = "crossentropy",
    batch_size: int | None = None,
    device: str | torch.device | None = "cpu",
    overwrite: bool = False,
    attrs: Mapping | None = None,
    flush_seconds: float = 2.0,
    chunk_size: int = 1,
    progress: bool = False,
) -> SensitivityResult | None:
    """Prune each of ``layers`` (default: every conv that can be pruned alone) by each of
    ``ratios`` separately and evaluate on ``data`` without retraining.

    Collective under MPI (``comm``; None: serial): every rank calls it with the same model and
    data; rank 0 returns the :class:`SensitivityResult`, the others None. With ``out``, rank 0
    keeps the HDF5 file there (resumed when it holds the same inputs, refused when not, unless
    ``overwrite``). ``attrs``: more provenance for the file (such as the checkpoint path and
    dataset); those named in ``attrs["config_keys"]`` (comma-separated) must match on resume.
    ``strategy`` is recorded and passed to the pruning; one layer alone prunes the same either way.
    """
    from landscape import __version__
    from landscape.evaluate import Evaluator, resolve_device

    comm = comm or SerialComm()
    out = os.fspath(out) if out is not None else None

    def check():
        if strategy not in STRATEGIES:
            raise LandscapeError(f"strategy must be one of {', '.join(STRATEGIES)}, got {strategy!r}")
        ratios_ = check_ratios(ratios)
        graph = trace(model)
        names, filters, kept_ = _validate(model, graph, layers, ratios_)
        stages = _stages(model, names, tuple(data.x.shape[1:]))
        dev = device if isinstance(device, torch.device) else resolve_device(device)
        return ratios_, graph, names, filters, kept_, stages, dev

    ratios_, graph, names, filters, kept_, stages, dev = _everywhere(comm, check)

    def open_file():  # rank 0, before any evaluation: a refused file costs nothing
        info = {
            "landscape_version": __version__, "torch_version": torch.__version__,
            "created": time.strftime("%Y-%m-%dT%H:%M:%S%z"), "model_sha256": state_digest(model),
            "data_sha256": data_digest(data), "num_samples": len(data), "strategy": strategy,
            "loss": loss, "device": str(dev), "mpi_ranks": comm.size,
            "command": " ".join([os.path.basename(sys.argv[0])] + sys.argv[1:]),
        }
        info.update(dict(attrs or {}))
        st = _State(names, ratios_, filters, stages, kept_, info)
        return _open(out, st, overwrite) if out is not None else st

    st = _on_root(comm, open_file)

    def evaluator_for_baseline():
        ddata = _device_data(data, model, dev)
        ev = Evaluator(copy.deepcopy(model), ddata, loss, batch_size=batch_size, device=dev)
        return ddata, ev, int(getattr(ev, "batch_size", batch_size or 0) or 0) or None

    ddata, evaluator, bs = _everywhere(comm, evaluator_for_baseline)
    if comm.size > 1 and batch_size is None:  # one batch size everywhere: rank 0's pick
        agreed = comm.bcast(bs, root=0)
        if agreed != bs:
            with abort_on_error(comm, PROG):
                bs = agreed
                evaluator = Evaluator(evaluator.model, ddata, loss, batch_size=bs, device=dev)
    if st is not None:
        st.attrs["batch_size"] = bs or ""

    R = len(ratios_)
    base_k = len(names) * R

    def job(k: int) -> dict:
        if k == base_k:
            loss_, acc = _loss_acc(evaluator())
        else:
            i, j = divmod(k, R)
            pruned = _prune(model, graph, {names[i]: float(ratios_[j])}, strategy)
            ev = Evaluator(pruned, ddata, loss, batch_size=bs, device=dev)
            loss_, acc = _loss_acc(ev())
        return {"loss": loss_, "acc": acc}

    pending: list[int] = []
    if st is not None:
        pending = ([] if st.baseline_done else [base_k]) + [int(k) for k in np.flatnonzero(~st.completed.ravel())]
    bar = None
    if st is not None and progress and pending:
        from tqdm import tqdm

        bar = tqdm(total=base_k + 1, initial=base_k + 1 - len(pending), desc="sensitivity", unit="pt",
                   file=sys.stderr, dynamic_ncols=True)
    last = time.monotonic()

    def save() -> None:
        if st is not None and out is not None:
            _write(out, st)

    def on_result(k: int, values: dict) -> None:
        nonlocal last
        if k == base_k:
            st.baseline = [values["loss"], values["acc"]]
            st.baseline_done = True
        else:
            i, j = divmod(k, R)
            st.loss[i, j], st.accuracy[i, j] = values["loss"], values["acc"]
            st.completed[i, j] = True
        if bar is not None:
            bar.update(1)
        if out is not None and time.monotonic() - last >= flush_seconds:
            save()
            last = time.monotonic()

    try:
        map_points(job, pending, on_result, comm, chunk_size, on_abort=save, prog=PROG)
    except BaseException:
        if comm.size == 1:
            save()  # keep every finished pair of an interrupted serial run
        raise
    finally:
        if bar is not None:
            bar.close()
    if comm.rank != 0:
        return None
    st.attrs["finished"] = time.strftime("%Y-%m-%dT%H:%M:%S%z")
    save()
    return st.result()


__all__ = ["SensitivityResult", "data_digest", "filter_norms", "read_sensitivity", "sensitivity", "state_digest"]
