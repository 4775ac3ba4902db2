"""Training from a config, the work of ``landscape-train``: ``train(TrainConfig.from_args(arch="resnet56"))``.

The recipe follows the original loss-landscape tool's ``cifar10/main.py``: SGD with Nesterov
momentum 0.9 (or Adam), weight decay 5e-4, learning rate x0.1 after 50%, 75% and 11/12 of the
epochs (150, 225, 275 of 300), its initialization (Kaiming-normal convs, N(0, 1e-3) linear
layers; used for networks with BatchNorm, while BN-free nets such as the MLP keep PyTorch's
default, under which they train), random crop + flip augmentation on CIFAR.

This module assembles the job: the zoo model (a pruned or low-rank one from ``plan`` or
``init_from`` is just a model), the data, the optimizer (SAM around it with ``sam``) and schedule,
the objective (distillation from a teacher), the hooks (quantized training is
``quantize_(model, QuantConfig(...))``; big-batch SR multiplies the batch size here) and the run
folder, and hands them to :class:`landscape.training.Loop`.

The run folder receives ``model_0.pt`` (the initialization), ``model_{epoch}.pt`` every
``save_every`` epochs and at the end, ``log.csv`` with the train/test loss and error of every
epoch, and ``resume.pt`` (the newest state, removed when the run finishes) so that an
interrupted run resumes where it stopped, bit for bit on the CPU.

Each checkpoint is ``{"state_dict", "epoch", "accuracy" (test accuracy, %), "acc" (the same,
under the original tool's key), "train_loss", "train_err", "test_loss", "test_err", "optimizer",
"step", "args", "arch", "num_classes", "in_channels", "dataset", "hooks", "hook_config"}`` (and
``"widths"`` of a pruned network, ``"lowrank"`` of a factorized one); ``args`` are the flags of
``landscape-train`` (:meth:`TrainConfig.args`, resolved). It loads with
``torch.load(weights_only=True)`` and :func:`landscape.io.checkpoint.load_state_dict`.
"""

from __future__ import annotations

import io
import os
import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field, fields, replace
from functools import partial
from types import SimpleNamespace

import numpy as np
import torch
from torch import nn

from landscape.data.datasets import Dataset, DataSpec, apply_label_noise, augment
from landscape.errors import LandscapeError, check_choice, first_line, is_int
from landscape.evaluation.evaluator import keep_malloc_arenas
from landscape.evaluation.losses import LOSSES
from landscape.io.checkpoint import Checkpoint, read_checkpoint
from landscape.io.files import write_bytes
from landscape.jobs.network import network
from landscape.lowrank import lowrank_of
from landscape.models import build_model
from landscape.prune import plan_widths, resize_
from landscape.quant import QuantConfig, quantize_
from landscape.runtime.device import resolve_device
from landscape.runtime.threads import choose_threads, using_threads
from landscape.training import (
    Distillation,
    Loop,
    LoopConfig,
    Milestones,
    OptimizerConfig,
    RunFolder,
    TrainHook,
    make_optimizer,
)
from landscape.training.optim import default_milestones

INITS = ("auto", "original", "torch")
NOISE_FILE = "label_noise.npz"
# Settings that must not change when a run is resumed (epochs, device, saving and display may):
# everything that decides the numbers, mixed precision and the memory format included.
RESUME_KEYS = (
    "amp", "channels_last",
    "arch", "dataset", "optimizer", "lr", "momentum", "nesterov", "weight_decay", "batch_size",
    "lr_decay", "milestones", "loss", "seed", "augment", "raw_data", "label_noise", "subset",
    "num_classes", "init", "synthetic_size", "init_from_sha256", "plan",
    "quant", "bits", "big_batch", "quant_scale", "quant_keep", "quant_step",  # quantized training
    "sam", "sam_adaptive",  # sharpness-aware minimization
    "teacher_sha256", "teacher_arch", "kd_temperature", "kd_alpha",  # distillation
    "sample_seed", "synthetic_seed", "synthetic_shape", "quant_seed",
)
HookSpec = TrainHook | Callable[[nn.Module], TrainHook]


@dataclass(frozen=True)
class Start:
    """Where the weights start: a fresh initialization (``init``: ``original``, the loss-landscape
    tool's; ``torch``, PyTorch's default; ``auto``, original for networks with BatchNorm), a
    checkpoint's weights (``init_from``: a pruned one with its widths, a low-rank one with its
    ranks; the rate then stays constant unless milestones are given), or a pruned architecture
    trained from scratch (``plan``: a preset or ``layer=fraction`` pairs)."""

    init: str = "auto"
    init_from: str | None = None
    plan: str | None = None

    def __post_init__(self):
        check_choice("init", self.init, INITS)
        if self.init_from is not None and not os.path.isfile(self.init_from):
            raise LandscapeError(f"`init_from` {self.init_from!r} does not exist")
        if self.init_from and self.plan:
            raise LandscapeError("`plan` builds a pruned architecture from scratch; `init_from` takes a pruned "
                                 "checkpoint's own widths: give one of them")


@dataclass(frozen=True)
class Teacher:
    """Knowledge distillation from the network of the checkpoint ``checkpoint`` (read like every
    checkpoint: ``weights_only`` unless the run allows pickles; its architecture ``arch``, default
    the student's) with :class:`landscape.training.Distillation`'s temperature and weight."""

    checkpoint: str
    arch: str | None = None
    distillation: Distillation = field(default_factory=Distillation)

    def __post_init__(self):
        if not isinstance(self.checkpoint, str) or not self.checkpoint:
            raise LandscapeError(f"`teacher` must be a checkpoint file, got {self.checkpoint!r}")
        if not os.path.isfile(self.checkpoint):
            raise LandscapeError(f"the teacher checkpoint {self.checkpoint!r} does not exist")
        if not isinstance(self.distillation, Distillation):
            raise LandscapeError(f"`distillation` must be a landscape.training.Distillation, got {self.distillation!r}")


@dataclass(frozen=True)
class RunOptions:
    """Where and how a run goes: its folder (default :func:`default_out`), continue or replace what
    is there, the device, torch threads (None: :mod:`landscape.runtime.threads`' policy, the idle
    cores) and GPUs for DataParallel (None: all visible ones)."""

    out: str | None = None
    resume: bool = False
    overwrite: bool = False
    device: str = "auto"
    threads: int | None = None
    ngpu: int | None = None

    def __post_init__(self):
        if self.resume and self.overwrite:
            raise LandscapeError("`resume` and `overwrite` exclude each other")
        for name in ("threads", "ngpu"):
            value = getattr(self, name)
            if value is not None and (not is_int(value) or value < 1):
                raise LandscapeError(f"`{name}` must be a positive integer or None, got {value!r}")


@dataclass(frozen=True)
class TrainConfig:
    """Everything that defines a training run, composed of the options each part declares once:
    the data (:class:`~landscape.data.datasets.DataSpec`: ``samples`` is a fixed random subset of
    each split), the optimizer (:class:`~landscape.training.OptimizerConfig`, SAM included), the
    loop (:class:`~landscape.training.LoopConfig`: epochs, batches, seed, ...), where the weights
    start (:class:`Start`: initialization, a checkpoint, a pruning plan), quantized training
    (:class:`~landscape.quant.QuantConfig`), distillation (:class:`Teacher`) and the run
    (:class:`RunOptions`); and what belongs to the run alone: the architecture, the schedule
    (``lr_decay`` at ``milestones``; None: 50%, 75% and 11/12 of the epochs, none with
    ``init_from``), the loss, augmentation (None: on for CIFAR), label noise, big-batch SR's
    multiple of the batch.

    :meth:`from_args` builds one from ``landscape-train``'s flags by name (``lr=0.05``,
    ``quant="bc"``); :meth:`args` gives them back: what every checkpoint records as ``"args"``."""

    arch: str = "resnet56"
    data: DataSpec = field(default_factory=lambda: DataSpec(dataset="cifar10"))
    optimizer: OptimizerConfig = field(default_factory=OptimizerConfig)
    loop: LoopConfig = field(default_factory=lambda: LoopConfig(epochs=300, batch_size=128, save_every=10,
                                                                           progress=True))
    lr_decay: float = 0.1
    milestones: tuple[int, ...] | None = None
    loss: str = "crossentropy"  # crossentropy | mse (on softmax outputs, as the original)
    augment: bool | None = None
    label_noise: float = 0.0
    big_batch: int = 1  # the loop runs batches of batch_size * big_batch (the quantization paper's big-batch SR)
    start: Start = field(default_factory=Start)
    quant: QuantConfig | None = None
    teacher: Teacher | None = None
    run: RunOptions = field(default_factory=RunOptions)
    unsafe_pickle: bool = False  # allow init_from and the teacher to hold pickled objects (trusted files only)

    def __post_init__(self):
        for name, kind in (("data", DataSpec), ("optimizer", OptimizerConfig), ("loop", LoopConfig),
                           ("start", Start), ("run", RunOptions)):
            if not isinstance(getattr(self, name), kind):
                raise LandscapeError(f"`{name}` must be a {kind.__name__}, got {getattr(self, name)!r}")
        for name, kind in (("quant", QuantConfig), ("teacher", Teacher)):
            if getattr(self, name) is not None and not isinstance(getattr(self, name), kind):
                raise LandscapeError(f"`{name}` must be a {kind.__name__} or None, got {getattr(self, name)!r}")
        if not isinstance(self.arch, str) or not self.arch:
            raise LandscapeError(f"`arch` must be a zoo name or package.module:callable, got {self.arch!r}")
        check_choice("loss", self.loss, tuple(LOSSES))
        if self.milestones is not None:
            object.__setattr__(self, "milestones", tuple(self.milestones))
        Milestones(self.optimizer.lr, self.lr_decay, self.milestones or ())  # its own checks of both
        if not 0.0 <= self.label_noise <= 1.0:
            raise LandscapeError(f"`label_noise` must be in [0, 1], got {self.label_noise}")
        if not is_int(self.big_batch) or self.big_batch < 1:
            raise LandscapeError(f"`big_batch` must be >= 1, got {self.big_batch}")
        if self.quant is not None and self.optimizer.sam is not None:
            raise LandscapeError(
                "`sam` cannot be combined with `quant`: quantized training takes its one gradient per step at the "
                "quantized weights and hands the optimizer their full-precision copy, so SAM's second gradient would "
                "be taken at weights the network never runs with")
        if self.teacher is not None and self.loss != "crossentropy":
            raise LandscapeError(f"`teacher` distills class probabilities: `loss` must be crossentropy, "
                                 f"got {self.loss!r}")

    # -- the flags ---------------------------------------------------------------------------

    def args(self) -> dict:
        """The run's settings by the names of ``landscape-train``'s flags (:data:`FLAGS`), as plain
        values (before the defaults that depend on others are filled in: :func:`resolved`); a
        part that is off (no quantization, no teacher) gives its switch None and its other flags
        their defaults."""
        off = _parts_off(self.loop.seed)
        out = {}
        for flag, path in FLAGS.items():
            *parts, name = path.split(".")
            obj = self
            for part in parts:
                obj = getattr(obj, part) if getattr(obj, part) is not None else off[part]
            value = getattr(obj, name)
            out[flag] = [int(v) for v in value] if isinstance(value, tuple) else value
        return out

    @classmethod
    def from_args(cls, **args) -> TrainConfig:
        """The config of ``landscape-train``'s flags by name (``arch="mlp", dataset="digits",
        lr=0.05, quant="bc"``; the others keep their defaults). The data's ``sample_seed`` and
        ``synthetic_seed`` and quantization's ``quant_seed`` follow ``seed`` unless given. An error
        names the flag."""
        base = cls().args()
        unknown = sorted(set(args) - set(base))
        if unknown:
            raise LandscapeError(f"unknown training option `{unknown[0]}`")
        given = {**base, **args}
        for key in ("sample_seed", "synthetic_seed", "quant_seed"):
            if key not in args:
                given[key] = given["seed"]
        values: dict[str, dict[str, object]] = {}  # part -> field -> value
        names: dict[str, dict[str, str]] = {}  # part -> field -> flag (for the errors)
        for flag, path in FLAGS.items():
            part, _, name = path.rpartition(".")
            values.setdefault(part, {})[name] = given[flag]
            names.setdefault(part, {})[name] = flag
        made = {part: _part(kind, values[part], names[part])
                for part, kind in (("data", DataSpec), ("optimizer", OptimizerConfig), ("loop", LoopConfig),
                                   ("start", Start), ("run", RunOptions))}
        if _switched_on("quant", "method", values, names, base):
            made["quant"] = _part(QuantConfig, values["quant"], names["quant"])
        if _switched_on("teacher", "checkpoint", values, names, base, also=("teacher.distillation",)):
            kd = _part(Distillation, values["teacher.distillation"], names["teacher.distillation"])
            made["teacher"] = _part(Teacher, {**values["teacher"], "distillation": kd}, names["teacher"])
        own = values[""]
        if own["milestones"] is not None:
            own["milestones"] = tuple(own["milestones"])
        return cls(**own, **made)


# landscape-train's flags, which are also the keys of a checkpoint's "args", and where each lives in
# a TrainConfig ("part.field"; a field of TrainConfig itself has no part). The previous version's
# flat TrainConfig had the first 42 of them as its fields.
FLAGS = {
    "arch": "arch", "dataset": "data.dataset", "data_root": "data.data_root", "out": "run.out",
    "optimizer": "optimizer.name", "lr": "optimizer.lr", "momentum": "optimizer.momentum",
    "nesterov": "optimizer.nesterov", "weight_decay": "optimizer.weight_decay", "batch_size": "loop.batch_size",
    "epochs": "loop.epochs", "lr_decay": "lr_decay", "milestones": "milestones", "loss": "loss", "seed": "loop.seed",
    "device": "run.device", "threads": "run.threads", "ngpu": "run.ngpu", "channels_last": "loop.channels_last",
    "amp": "loop.amp", "augment": "augment", "raw_data": "data.raw_data", "label_noise": "label_noise",
    "subset": "data.samples", "num_classes": "data.num_classes", "init": "start.init", "init_from": "start.init_from",
    "plan": "start.plan", "unsafe_pickle": "unsafe_pickle", "synthetic_size": "data.synthetic_size",
    "save_every": "loop.save_every", "eval_batch_size": "loop.eval_batch_size", "resume": "run.resume",
    "overwrite": "run.overwrite", "progress": "loop.progress", "quant": "quant.method", "bits": "quant.bits",
    "big_batch": "big_batch", "quant_scale": "quant.scale", "quant_keep": "quant.keep", "quant_step": "quant.step",
    # added since: SAM, distillation, the seeds of the data and of stochastic rounding, the synthetic shape
    "sam": "optimizer.sam", "sam_adaptive": "optimizer.sam_adaptive", "teacher": "teacher.checkpoint",
    "teacher_arch": "teacher.arch", "kd_temperature": "teacher.distillation.temperature",
    "kd_alpha": "teacher.distillation.alpha", "sample_seed": "data.sample_seed",
    "synthetic_seed": "data.synthetic_seed", "synthetic_shape": "data.synthetic_shape", "quant_seed": "quant.seed",
}


def _parts_off(seed: int) -> dict:
    """What the flags of a part that is off read: its switch None, the rest their defaults."""
    quant = {**{f.name: getattr(QuantConfig(), f.name) for f in fields(QuantConfig)}, "method": None, "seed": seed}
    return {"quant": SimpleNamespace(**quant),
            "teacher": SimpleNamespace(checkpoint=None, arch=None, distillation=Distillation())}


def _part(cls, values: Mapping[str, object], names: Mapping[str, str]):
    """``cls(**values)``; its error names the flags (``names``: field -> flag)."""
    try:
        return cls(**values)
    except LandscapeError as exc:
        text = re.sub(r"`([a-z][a-z0-9_]*)`", lambda m: f"`{names.get(m.group(1), m.group(1))}`", str(exc))
        raise type(exc)(text) from None


def _switched_on(part: str, switch: str, values: Mapping, names: Mapping, base: Mapping,
                 also: Sequence[str] = ()) -> bool:
    """Whether the part's switch flag is given; without it, the part's other flags (and those of
    the parts ``also``; its seed follows ``seed``) must keep their defaults."""
    if values[part][switch] is not None:
        return True
    given = [names[p][f] for p in (part, *also) for f, v in values[p].items()
             if not (p == part and f in (switch, "seed")) and v != base[names[p][f]]]
    if given:
        key = names[part][switch]
        raise LandscapeError(f"`{'`, `'.join(given)}` need{'s' if len(given) == 1 else ''} `{key}`")
    return False


@dataclass
class TrainResult:
    """What :func:`train` returns: the run folder, the final metrics and the trained model."""

    out: str
    epoch: int
    test_accuracy: float
    history: list[dict] = field(default_factory=list)
    checkpoints: list[str] = field(default_factory=list)
    model: nn.Module | None = None


def default_out(config: TrainConfig) -> str:
    """A run folder like the original tool's: ``runs/resnet56_sgd_lr=0.1_bs=128_wd=0.0005``
    (``_sam=RHO`` / ``_asam=RHO`` and ``_kd`` mark SAM, ASAM and distillation)."""
    c, o = config, config.optimizer
    name = f"{c.arch}_{o.name}_lr={o.lr}_bs={c.loop.batch_size}_wd={o.weight_decay}"
    if o.sam is not None:
        name += f"_{'asam' if o.sam_adaptive else 'sam'}={o.sam}"
    if c.teacher is not None:
        name += "_kd"
    if c.augment is False:
        name += "_noaug"
    if c.data.raw_data:
        name += "_rawdata"
    if c.label_noise:
        name += f"_randlabel={c.label_noise}"
    if c.loop.seed:
        name += f"_seed={c.loop.seed}"
    return os.path.join("runs", name.replace(":", "-").replace("/", "-"))


def init_params(model: nn.Module) -> None:
    """The original tool's initialization: Kaiming-normal (fan-in) convs, BatchNorm 1/0,
    linear weights N(0, 1e-3), zero biases."""
    for m in model.modules():
        if isinstance(m, nn.Conv2d | nn.ConvTranspose2d):
            nn.init.kaiming_normal_(m.weight, mode="fan_in")
            if m.bias is not None:
                nn.init.zeros_(m.bias)
        elif isinstance(m, nn.BatchNorm2d):
            nn.init.ones_(m.weight)
            nn.init.zeros_(m.bias)
        elif isinstance(m, nn.Linear):
            nn.init.normal_(m.weight, std=1e-3)
            if m.bias is not None:
                nn.init.zeros_(m.bias)


def resolved(c: TrainConfig, init: Checkpoint | None = None, teacher: Checkpoint | None = None) -> dict:
    """The config as saved (``args``): :meth:`TrainConfig.args` with the defaults that depend on
    others filled in (``init``, ``teacher``: those checkpoints, read: their SHA-256), and
    ``effective_batch_size`` with ``big_batch``."""
    d = c.args()
    if c.milestones is not None:
        marks = c.milestones
    else:  # retraining from a checkpoint runs at a constant rate, as the pruning paper's 40 epochs
        marks = [] if c.start.init_from else default_milestones(c.loop.epochs)
    d["milestones"] = [int(m) for m in marks]
    d["init_from_sha256"] = init.sha256 if init is not None else ""
    d["teacher_sha256"] = teacher.sha256 if teacher is not None else ""
    d["augment"] = c.augment if c.augment is not None else c.data.dataset in ("cifar10", "cifar100")
    d["out"] = c.run.out or default_out(c)
    if c.big_batch > 1:  # the loop runs batch_size * big_batch; args keep both, and the product
        d["effective_batch_size"] = c.loop.batch_size * c.big_batch
    return d


DERIVED = ("init_from_sha256", "teacher_sha256", "effective_batch_size")  # the keys resolved() adds


def upgrade_args(saved) -> dict:
    """A checkpoint's ``args`` as this version writes them. Run folders of earlier versions
    (flat ``args`` without the options added since: SAM, distillation, the data's and
    quantization's own seeds) read with those options off and the seeds at ``seed``, as they
    ran; settings this version does not know are refused in one line."""
    if not isinstance(saved, Mapping) or not saved:
        raise LandscapeError("its checkpoints record no settings (`args`) that landscape-train can read")
    base = TrainConfig().args()
    unknown = sorted(k for k in saved if k not in base and k not in DERIVED)
    if unknown:
        raise LandscapeError(f"its checkpoints record settings this version of landscape-train does not know "
                             f"({', '.join(unknown[:5])}): written by another version?")
    out = dict(saved)
    for key in base:
        if key not in out:
            out[key] = out.get("seed", 0) if key in ("sample_seed", "synthetic_seed", "quant_seed") else base[key]
    out.setdefault("teacher_sha256", "")
    if out.get("quant") is not None:  # the saved spelling of a scale or a keep rule, as QuantConfig reads it
        try:
            q = QuantConfig(method=out["quant"], bits=out["bits"], scale=out["quant_scale"], keep=out["quant_keep"],
                            step=out["quant_step"])
        except LandscapeError as exc:
            raise LandscapeError(f"its checkpoints record a quantization this version refuses: {exc}") from None
        out["quant_scale"], out["quant_keep"] = q.scale, q.keep
    return out


def load_splits(c: TrainConfig) -> tuple[Dataset, Dataset, dict | None]:
    """The train and test splits the config asks for (both cut to ``data.samples`` when given),
    and the label-noise record (or None)."""
    train_set, _ = c.data.load("train", what="subset")  # landscape-train's flag for DataSpec.samples
    test_set, _ = c.data.load("test", what="subset")
    n = c.data.num_classes
    if n is not None:
        ymax = int(max(train_set.y.max(), test_set.y.max()))
        if ymax >= n:
            raise LandscapeError(f"`num_classes` {n} but the labels go up to {ymax}")
        train_set.num_classes = test_set.num_classes = n
    record = None
    if c.label_noise > 0:
        train_set, record = apply_label_noise(train_set, c.label_noise, seed=c.loop.seed)
    return train_set, test_set, record


def build(config: TrainConfig, num_classes: int, in_channels: int, sample: torch.Tensor,
          init: Checkpoint | None = None, widths: Mapping[str, int] | None = None) -> nn.Module:
    """The network a run trains, built in one place: ``init`` (the ``init_from`` checkpoint, read
    once) in its architecture (a pruned or low-rank one as it records), or the architecture
    resized to ``widths`` (a pruned one from ``plan``: the paper's "scratch-train") and
    initialized; checked against a data sample."""
    c = config
    torch.manual_seed(c.loop.seed)
    if init is not None:
        model = network(init, c.arch, num_classes, in_channels)
    else:
        model = build_model(c.arch, num_classes=num_classes, in_channels=in_channels)
        if widths:
            resize_(model, dict(widths))
        has_bn = any(isinstance(m, nn.modules.batchnorm._BatchNorm) for m in model.modules())
        if c.start.init == "original" or (c.start.init == "auto" and has_bn):
            init_params(model)
    _probe(model, sample, num_classes, f"architecture {c.arch!r}", c.data.dataset)
    return model


def _probe(model: nn.Module, sample: torch.Tensor, num_classes: int, what: str, dataset: str) -> None:
    """Refuse a network that does not take the data's inputs or gives other than ``num_classes`` scores."""
    model.eval()
    try:
        with torch.no_grad():
            probe = model(sample)
    except RuntimeError as exc:
        raise LandscapeError(f"{what} does not take {dataset} inputs of shape {tuple(sample.shape[1:])}: "
                             f"{first_line(exc)}") from None
    if probe.ndim != 2 or probe.shape[1] != num_classes:
        shape = tuple(probe.shape[1:])
        classes = f"{shape[0]} classes" if len(shape) == 1 else f"outputs of shape {shape}"
        raise LandscapeError(f"{what} gives {classes}, the data has {num_classes}")


def teacher_network(c: TrainConfig, ckpt: Checkpoint, num_classes: int, in_channels: int,
                    sample: torch.Tensor) -> nn.Module:
    """The teacher of a distillation run: its checkpoint's network (read once, like every
    checkpoint), in eval mode; refused when its classes are not the data's."""
    t = c.teacher
    recorded = ckpt.num_classes
    if recorded is not None and recorded != num_classes:
        raise LandscapeError(f"the teacher {t.checkpoint!r} has {recorded} classes, the data {num_classes}")
    arch = t.arch or c.arch
    try:
        model = network(ckpt, arch, num_classes, in_channels)
    except LandscapeError as exc:
        raise LandscapeError(f"the teacher ({arch} for the data's {num_classes} classes): {exc}") from None
    _probe(model, sample, num_classes, f"the teacher {t.checkpoint!r}", c.data.dataset)
    return model


def _widths_of(c: TrainConfig, num_classes: int, in_channels: int, init: Checkpoint | None) -> dict | None:
    """The channel widths a pruned network needs to be rebuilt: those ``plan`` gives it (shapes
    only, on the meta device), or those recorded in ``init`` (a pruned checkpoint); carried into
    every checkpoint of the run."""
    if c.start.plan:
        with torch.device("meta"):
            return plan_widths(build_model(c.arch, num_classes=num_classes, in_channels=in_channels), c.start.plan)
    return init.widths if init is not None else None


class TrainJob:
    """A training run assembled from a :class:`TrainConfig`: :attr:`loop` (a
    :class:`landscape.training.Loop` with its :attr:`folder`), ready to :meth:`run`.

    ``hooks``: :class:`TrainHook` objects, or functions that make one from the built model
    (``lambda model: quantize_(model, QuantConfig(...))``); the config's own quantization hook
    comes after them.
    """

    def __init__(self, config: TrainConfig, hooks: Sequence[HookSpec] = ()):
        if not isinstance(config, TrainConfig):
            raise LandscapeError(f"a training run takes a TrainConfig, got {type(config).__name__}")
        c = self.config = config
        # each checkpoint read once, safely, before anything is written
        self.init = read_checkpoint(c.start.init_from, c.unsafe_pickle) if c.start.init_from else None
        self.teacher = read_checkpoint(c.teacher.checkpoint, c.unsafe_pickle) if c.teacher is not None else None
        self.args = resolved(c, self.init, self.teacher)
        self.out = self.args["out"]
        device = resolve_device(c.run.device)  # before the run folder is created
        if c.optimizer.sam is not None and c.loop.amp and device.type == "cuda":
            raise LandscapeError("`sam` cannot be combined with `amp` on CUDA: the gradient scaler's step takes no "
                                 "closure, and SAM evaluates the loss twice per step")
        self.folder = RunFolder(self.out, self.args, resume=c.run.resume, overwrite=c.run.overwrite,
                                check=RESUME_KEYS, own_files=(NOISE_FILE,), upgrade=upgrade_args)
        try:
            self.loop, self.noise = self._assemble(c, device, hooks)
        except BaseException:
            self.folder.close()
            raise

    def _assemble(self, c: TrainConfig, device: torch.device, hooks: Sequence[HookSpec]) -> tuple[Loop, dict | None]:
        if device.type == "cpu":
            keep_malloc_arenas()
        train_set, test_set, noise = load_splits(c)
        num_classes = c.data.num_classes or max(train_set.num_classes, test_set.num_classes)
        in_channels = int(train_set.x.shape[1]) if train_set.x.ndim == 4 else 1
        widths = _widths_of(c, num_classes, in_channels, self.init)
        sample = train_set.x[:2]
        model = build(c, num_classes, in_channels, sample, self.init, widths if c.start.plan else None)
        objective = None
        if self.teacher is not None:
            teacher = teacher_network(c, self.teacher, num_classes, in_channels, sample)
            if c.loop.channels_last:
                teacher = teacher.to(memory_format=torch.channels_last)
            objective = c.teacher.distillation.loss(teacher.to(device))
        if c.loop.channels_last:
            model = model.to(memory_format=torch.channels_last)
        model = model.to(device)
        net: nn.Module = model
        if device.type == "cuda":
            visible = torch.cuda.device_count()
            n_gpu = visible if c.run.ngpu is None else min(c.run.ngpu, visible)
            if n_gpu > 1:
                net = nn.DataParallel(model, device_ids=list(range(n_gpu)))
            torch.backends.cudnn.benchmark = True
        made = [h if isinstance(h, TrainHook) else h(model) for h in hooks]
        optimizer = make_optimizer(model, c.optimizer)
        if c.quant is not None:  # quantized training: the model is quantized in place, the hook keeps it so
            made.append(quantize_(model, c.quant))
        record = {"arch": c.arch, "num_classes": num_classes, "in_channels": in_channels, "dataset": c.data.dataset}
        if noise is not None:
            changed = int((noise["original"] != noise["noisy"]).sum())
            record.update(label_noise_file=NOISE_FILE, label_noise_changed=changed)
        if widths:
            record["widths"] = widths
        lowrank = lowrank_of(self.init.meta) if self.init is not None else None
        if lowrank:  # a factorized network keeps its ranks (and what made it) in every checkpoint
            record["lowrank"] = lowrank
        augmenting = bool(self.args["augment"]) and train_set.x.ndim == 4
        loop = Loop(
            model, (train_set.x, train_set.y), optimizer,
            schedule=Milestones(c.optimizer.lr, c.lr_decay, self.args["milestones"]),
            hooks=made,
            config=replace(c.loop, batch_size=c.loop.batch_size * c.big_batch),
            test_data=(test_set.x, test_set.y),
            loss=c.loss, objective=objective,
            transform=partial(augment, fill=train_set.info.get("pad_fill")) if augmenting else None,
            folder=self.folder, record=record, net=net,
        )
        return loop, noise

    def run(self, on_epoch_end: Callable[[int, dict], None] | None = None) -> TrainResult:
        """Train (or continue) the run; see :func:`train`."""
        c, loop = self.config, self.loop
        try:
            self.folder.begin()  # everything is known to work: only now touch the run folder
            if self.noise is not None:
                buffer = io.BytesIO()
                np.savez(buffer, p=c.label_noise, seed=c.loop.seed, **self.noise)
                write_bytes(os.path.join(self.out, NOISE_FILE), buffer.getbuffer())
            with using_threads(choose_threads(c.run.threads)):
                history = loop.run(on_epoch_end)
        finally:
            self.folder.close()
        final = history[-1]
        return TrainResult(self.out, int(final["epoch"]), 100.0 - final["test_err"], history, loop.saved,
                           loop.model.cpu())


def train(
    config: TrainConfig,
    on_epoch_end: Callable[[int, dict], None] | None = None,
    hooks: Sequence[HookSpec] = (),
) -> TrainResult:
    """Train ``config.arch`` on ``config.data`` and save the run folder (see the module doc).

    ``hooks``: :class:`TrainHook` objects, or functions that make one from the built model.
    ``on_epoch_end(epoch, row)`` is called after each epoch's checkpoint is written (row: the log
    line); raising in it stops the run as an interruption would, resumable with ``resume=True``.
    """
    return TrainJob(config, hooks).run(on_epoch_end)


__all__ = ["INITS", "RESUME_KEYS", "RunOptions", "Start", "Teacher", "TrainConfig", "TrainJob", "TrainResult", "build",
           "default_out", "init_params", "load_splits", "resolved", "teacher_network", "train", "upgrade_args"]
