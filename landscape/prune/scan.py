"""Sensitivity to pruning (Li et al., Sec. 3.2): prune each conv layer alone at increasing
fractions and evaluate without retraining; and the sorted filter norms behind it (Fig. 2(a)).

The (layer, fraction) pairs are the points of a grid over fraction (x) and layer (y), computed by
the point runner (:func:`landscape.engine.points.compute_points`): handed out over MPI ranks, resumable,
into a surface file (``loss``, ``acc`` arrays layer x ratio, with its checksums, lock and
resume checks), so ``landscape-plot --quantity acc`` draws it too.
"""

from __future__ import annotations

import copy
import json
import os
import sys
from collections.abc import Sequence
from dataclasses import dataclass, field, replace

import numpy as np
import torch
from torch import nn

from landscape.data.batches import as_batches, inputs_of, tensors_of
from landscape.data.datasets import Dataset
from landscape.engine.options import Output
from landscape.engine.points import compute_points
from landscape.errors import LandscapeError
from landscape.evaluation.evaluator import Evaluator
from landscape.evaluation.options import EvalOptions
from landscape.io.surface_file import read_surface
from landscape.prune.counts import conv_output_shapes
from landscape.prune.graph import ChannelGraph, channel_graph, is_conv
from landscape.prune.plans import kept
from landscape.prune.removal import STRATEGIES, _group_fractions, _prune, filter_scores
from landscape.runtime.device import resolve_device
from landscape.runtime.parallel import collective, on_root, world
from landscape.runtime.provenance import environment
from landscape.space.params import tensors_checksum


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


def _stages(model: nn.Module, layers: Sequence[str], input_shape: Sequence[int] | None) -> tuple[int, ...]:
    """Stage of each layer: the rank of its output resolution, largest first (all 0 when the
    input's shape is not known)."""
    if input_shape is None:
        return (0,) * len(layers)
    shapes = conv_output_shapes(model, input_shape)
    size = {n: int(np.prod(shapes[n][1:])) if n in shapes else 0 for n in layers}
    order = sorted(set(size.values()), reverse=True)
    return tuple(order.index(size[n]) for n in layers)


def _device_data(data, model: nn.Module, device: torch.device) -> tuple[object, tuple[int, ...] | None]:
    """The data on the device once, for every evaluator, and one sample's input shape (None when
    the inputs are not one tensor). ``data``: what :func:`landscape.surface` takes (a
    :class:`landscape.Dataset`, ``(X, y)``, a torch Dataset, a DataLoader, dict batches):
    tensors become a :class:`landscape.Dataset` (channels-last for conv nets), anything else
    :class:`landscape.data.batches.Batches` read once."""
    tensors = tensors_of(data)
    if tensors is None or len(tensors) < 2:
        batches = as_batches(data, device)
        sample = inputs_of(batches.first(1))
        return batches, tuple(sample.shape[1:]) if torch.is_tensor(sample) else None
    x, y = tensors[0].to(device), tensors[1].to(device)
    if x.dim() == 4 and any(is_conv(m) for m in model.modules()):
        x = x.contiguous(memory_format=torch.channels_last)
    if isinstance(data, Dataset):
        return Dataset(x, y, data.num_classes, data.name, dict(data.info)), tuple(x.shape[1:])
    return (x, y, *tensors[2:]), tuple(x.shape[1:])


# ------------------------------------------------------------------------------- the run


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


class _Pruned:
    """The per-point metric of a scan: loss and accuracy (%) of the pruned copy (names for the file,
    configuration for resume; the scan's job computes them)."""

    names = ("loss", "acc")

    def __init__(self, loss: str, fingerprint: str, samples: int, strategy: str):
        self._config = {"loss": loss, "data": fingerprint, "samples": samples, "strategy": strategy}

    def config(self) -> dict:
        return dict(self._config)


def _result(surface) -> SensitivityResult:
    """A sensitivity file (a surface over ratio x layer) as a :class:`SensitivityResult`."""
    a = surface.attrs
    try:
        layers = tuple(json.loads(a["layers"]))
        filters = tuple(int(v) for v in json.loads(a.get("filters", "[]")))
        stages = tuple(int(v) for v in json.loads(a.get("stages", "[]")))
    except (KeyError, TypeError, ValueError):
        raise LandscapeError(f"{surface.path!r} is not a sensitivity file (no layers)") from None
    if "loss" not in surface.values or "acc" not in surface.values or len(layers) != surface.shape[0]:
        raise LandscapeError(f"{surface.path!r} is not a sensitivity file")
    done = surface.done["loss"] & surface.done["acc"]
    return SensitivityResult(layers, surface.x.copy(), surface.values["acc"].copy(), surface.values["loss"].copy(),
                             float(a.get("baseline_accuracy", np.nan)), float(a.get("baseline_loss", np.nan)),
                             filters, stages, done, dict(a))


def read_sensitivity(path: str | os.PathLike) -> SensitivityResult:
    """Read a sensitivity file written by :func:`sensitivity` (verified like every surface file)."""
    return _result(read_surface(path))


def sensitivity(
    model: nn.Module,
    data,
    ratios: Sequence[float],
    layers: Sequence[str] | None = None,
    strategy: str = "independent",
    *,
    evaluation: EvalOptions | None = None,
    output: Output | None = None,
    comm=None,
) -> SensitivityResult:
    """Prune each of ``layers`` (default: every conv that can be pruned alone) by each of
    ``ratios`` separately and evaluate on ``data`` without retraining. ``data``: anything
    :func:`landscape.surface` takes (``(X, y)``, a :class:`landscape.Dataset`, a torch Dataset, a
    DataLoader, dict batches). ``evaluation``: how each pruned network is evaluated, an
    :class:`~landscape.evaluation.options.EvalOptions` (loss, accuracy, batch size, device,
    precision, threads, forward function; no BatchNorm recomputation or compile: every pair is a
    new network). ``output``: the file and how it is written, an
    :class:`~landscape.engine.options.Output` (default: no file, no progress bar; its
    ``provenance`` goes into the file's attributes).

    It runs on the point runner (:func:`landscape.engine.points.compute_points`): the (layer,
    ratio) pairs are the points of a grid over ratio (x) and layer (y), handed out over MPI ranks
    (``comm``; None: serial, or MPI when launched by mpirun), and the file ``output.path`` is a
    surface file with ``loss`` and ``acc`` arrays (layer x ratio), the unpruned network's values
    in the attributes, and everything a surface file guarantees: resumed when its inputs (model,
    data, layers, ratios, strategy, loss) match and refused when not, one writer, checksums,
    ``repair``. Every rank returns the result.
    """
    evaluation = evaluation if evaluation is not None else EvalOptions()
    output = output if output is not None else Output(progress=False)
    for name, value, kind in (("evaluation", evaluation, EvalOptions), ("output", output, Output)):
        if not isinstance(value, kind):
            raise LandscapeError(f"`{name}` must be a landscape.{kind.__name__}, got {type(value).__name__}")
    if evaluation.bn_recompute or evaluation.compile:
        raise LandscapeError("the pruning scan evaluates a new network at every pair: it takes no `bn_recompute` "
                             "and no `compile`")
    comm = comm or world()

    def check():
        if strategy not in STRATEGIES:
            raise LandscapeError(f"strategy must be one of {', '.join(STRATEGIES)}, got {strategy!r}")
        ratios_ = check_ratios(ratios)
        graph = channel_graph(model)
        names, filters, kept_ = _validate(model, graph, layers, ratios_)
        return ratios_, graph, names, filters, resolve_device(evaluation.device)

    ratios_, graph, names, filters, dev = collective(comm, check)
    ddata, input_shape = collective(comm, lambda: _device_data(data, model, dev))
    stages = _stages(model, names, input_shape)

    def baseline_evaluator(size):
        return Evaluator(copy.deepcopy(model), ddata, replace(evaluation, batch_size=size, device=dev))

    if comm.size > 1 and evaluation.batch_size is None:  # one batch size everywhere: rank 0's probe
        size = on_root(comm, lambda: baseline_evaluator(None).batch_size)
        evaluator = collective(comm, lambda: baseline_evaluator(size))
    else:
        evaluator = collective(comm, lambda: baseline_evaluator(evaluation.batch_size))
    bs = evaluator.batch_size
    each = replace(evaluation, batch_size=bs, device=dev)
    metric = _Pruned(evaluator.loss_name, evaluator.batches.fingerprint(), evaluator.n, strategy)
    R = len(ratios_)
    coords = [ratios_, np.arange(len(names), dtype=float)]
    inputs = {
        "ratios": [float(r) for r in ratios_],
        "model": f"{type(model).__qualname__}:{tensors_checksum(model.state_dict())}",
        "layers": list(names), "metrics": {n: metric.config() for n in metric.names},
    }
    info = {
        **environment(), "kind": "pruning sensitivity", "layers": json.dumps(list(names)),
        "filters": json.dumps([int(f) for f in filters]), "stages": json.dumps([int(v) for v in stages]),
        "strategy": strategy, "loss": evaluator.loss_name, "samples": evaluator.n, "device": str(dev),
        "mpi_ranks": comm.size, "batch_size": bs or "", "xlabel": "fraction pruned", "ylabel": "layer",
        "command": " ".join([os.path.basename(sys.argv[0])] + sys.argv[1:]),
    }

    def on_open(surface) -> None:  # rank 0: the unpruned network's values, once
        if "baseline_loss" not in surface.attrs:
            values = evaluator()
            surface.attrs["baseline_loss"] = values["loss"]
            surface.attrs["baseline_accuracy"] = values.get("acc", float("nan"))

    def job(p: int, needed) -> dict:
        j, i = divmod(p, R)  # layer j, ratio i: arrays are layer x ratio
        pruned = _prune(model, graph, {names[j]: float(ratios_[i])}, strategy)
        values = Evaluator(pruned, ddata, each)()
        return {"loss": values["loss"], "acc": values.get("acc", float("nan"))}

    surface = compute_points(coords, [metric], job, inputs=inputs, attrs=info, output=output, comm=comm,
                             on_open=on_open, what="sensitivity scan")
    return _result(surface)


__all__ = ["SensitivityResult", "filter_norms", "read_sensitivity", "sensitivity"]
