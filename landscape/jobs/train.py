"""Training from a config, the work of ``landscape-train``: ``train(TrainConfig(arch="resnet56"))``.

The recipe follows the original loss-landscape tool's ``cifar10/main.py``: SGD with Nesterov
momentum 0.9 (or Adam), weight decay 5e-4, learning rate x0.1 after 50%, 75% and 11/12 of the
epochs (150, 225, 275 of 300), its initialization (Kaiming-normal convs, N(0, 1e-3) linear
layers; used for networks with BatchNorm, while BN-free nets such as the MLP keep PyTorch's
default, under which they train), random crop + flip augmentation on CIFAR.

This module assembles the job: the zoo model (a pruned one from ``plan`` or ``init_from`` is just
a model), the data, the optimizer and schedule, the hooks (quantized training is
``quantize_(model, QuantConfig(...))``; big-batch SR multiplies the batch size here) and the run
folder, and hands them to :class:`landscape.training.Loop`.

The run folder receives ``model_0.pt`` (the initialization), ``model_{epoch}.pt`` every
``save_every`` epochs and at the end, ``log.csv`` with the train/test loss and error of every
epoch, and ``resume.pt`` (the newest state, removed when the run finishes) so that an
interrupted run resumes where it stopped, bit for bit on the CPU.

Each checkpoint is ``{"state_dict", "epoch", "accuracy" (test accuracy, %), "acc" (the same,
under the original tool's key), "train_loss", "train_err", "test_loss", "test_err", "optimizer",
"step", "args", "arch", "num_classes", "in_channels", "dataset", "hooks", "hook_config"}``; it
loads with ``torch.load(weights_only=True)`` and :func:`landscape.io.checkpoint.load_state_dict`.
"""

from __future__ import annotations

import io
import math
import os
from collections.abc import Callable, Mapping, Sequence
from dataclasses import asdict, dataclass, field
from functools import partial

import numpy as np
import torch
from torch import nn

from landscape.data.datasets import Dataset, apply_label_noise, augment, load_dataset
from landscape.errors import LandscapeError, first_line
from landscape.evaluation.evaluator import keep_malloc_arenas
from landscape.evaluation.losses import LOSSES
from landscape.io.checkpoint import Checkpoint, read_checkpoint
from landscape.io.files import write_bytes
from landscape.jobs.network import network
from landscape.models import build_model
from landscape.prune import plan_widths, resize_
from landscape.quant import QuantConfig, quantize_
from landscape.runtime.device import resolve_device
from landscape.runtime.threads import choose_threads, using_threads
from landscape.training import OPTIMIZERS, Loop, LoopConfig, Milestones, RunFolder, TrainHook, make_optimizer
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
)
HookSpec = TrainHook | Callable[[nn.Module], TrainHook]


@dataclass(frozen=True)
class TrainConfig:
    """Everything that defines a training run: the flags of ``landscape-train`` (saved as
    ``args`` in every checkpoint)."""

    arch: str = "resnet56"
    dataset: str = "cifar10"
    data_root: str | None = None
    out: str | None = None  # default: runs/<arch>_<optimizer>_lr=<lr>_bs=<bs>_wd=<wd>...
    optimizer: str = "sgd"  # a name of OPTIMIZERS, or package.module:callable(params, config)
    lr: float = 0.1
    momentum: float = 0.9
    nesterov: bool = True
    weight_decay: float = 5e-4
    batch_size: int = 128
    epochs: int = 300
    lr_decay: float = 0.1
    milestones: list[int] | None = None  # None: 50%, 75% and 11/12 of the epochs ([] with init_from)
    loss: str = "crossentropy"  # crossentropy | mse (on softmax outputs, as the original)
    seed: int = 0
    device: str = "auto"  # auto | cpu | cuda | cuda:N | mps
    threads: int | None = None  # torch threads; None: landscape.runtime.threads' policy (the idle cores)
    ngpu: int | None = None  # GPUs for DataParallel; None: all visible ones
    channels_last: bool = False
    amp: bool = False  # float16 autocast + gradient scaling on CUDA, bfloat16 on CPU
    augment: bool | None = None  # None: on for CIFAR (crop+flip), off for others
    raw_data: bool = False
    label_noise: float = 0.0
    subset: int | None = None
    num_classes: int | None = None  # None: from the dataset
    init: str = "auto"  # original (the loss-landscape tool's) | torch | auto: original with BN
    init_from: str | None = None  # start from this checkpoint's weights (and its pruned widths)
    plan: str | None = None  # train a pruned architecture from scratch: a preset or layer=fraction,...
    unsafe_pickle: bool = False  # allow init_from to hold pickled objects (trusted files only)
    synthetic_size: int = 2048
    save_every: int = 10
    eval_batch_size: int = 1024
    resume: bool = False
    overwrite: bool = False
    progress: bool = True
    # quantized training (landscape.quant; Li et al., NIPS'17)
    quant: str | None = None  # None | bc (BinaryConnect) | sr (stochastic rounding) | r (rounding)
    bits: int = 1  # 1..8: a symmetric grid of 2**bits levels per layer
    big_batch: int = 1  # the loop runs batches of batch_size * big_batch (the paper's big-batch SR)
    quant_scale: str = "he"  # each layer's grid scale: he | std | max | mean | a number (landscape.quant)
    quant_keep: str = "none"  # layers kept in full precision: none | first | last | first,last
    quant_step: str = "unit"  # unit: the optimizer steps weights / scale (the paper's +-1) | raw


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
    """A run folder like the original tool's: ``runs/resnet56_sgd_lr=0.1_bs=128_wd=0.0005``."""
    name = f"{config.arch}_{config.optimizer}_lr={config.lr}_bs={config.batch_size}"
    name += f"_wd={config.weight_decay}"
    if config.augment is False:
        name += "_noaug"
    if config.raw_data:
        name += "_rawdata"
    if config.label_noise:
        name += f"_randlabel={config.label_noise}"
    if config.seed:
        name += f"_seed={config.seed}"
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


def quant_config(c: TrainConfig):
    """The :class:`landscape.quant.QuantConfig` that ``quant``/``bits``/``quant_*`` ask for (None
    without ``quant``)."""
    if c.quant is None:
        if (c.bits, c.quant_scale, c.quant_keep, c.quant_step) != (1, "he", "none", "unit"):
            raise LandscapeError("`bits`, `quant_scale`, `quant_keep` and `quant_step` need `quant`")
        return None

    return QuantConfig(method=c.quant, bits=c.bits, scale=c.quant_scale, keep=c.quant_keep, step=c.quant_step,
                       seed=c.seed)


def _validate(c: TrainConfig) -> None:
    checks = [
        (c.optimizer in OPTIMIZERS or ":" in c.optimizer,
         f"`optimizer` must be one of {', '.join(OPTIMIZERS)} or package.module:callable, got {c.optimizer!r}"),
        (c.loss in LOSSES, f"`loss` must be one of {', '.join(LOSSES)}, got {c.loss!r}"),
        (c.init in INITS, f"`init` must be auto, original or torch, got {c.init!r}"),
        (c.lr > 0 and math.isfinite(c.lr), f"`lr` must be positive, got {c.lr}"),
        (c.batch_size > 0, f"`batch_size` must be positive, got {c.batch_size}"),
        (c.eval_batch_size > 0, f"`eval_batch_size` must be positive, got {c.eval_batch_size}"),
        (c.epochs > 0, f"`epochs` must be positive, got {c.epochs}"),
        (c.save_every > 0, f"`save_every` must be positive, got {c.save_every}"),
        (c.weight_decay >= 0, f"`weight_decay` must be >= 0, got {c.weight_decay}"),
        (c.momentum >= 0, f"`momentum` must be >= 0, got {c.momentum}"),
        (c.lr_decay > 0, f"`lr_decay` must be positive, got {c.lr_decay}"),
        (0.0 <= c.label_noise <= 1.0, f"`label_noise` must be in [0, 1], got {c.label_noise}"),
        (c.subset is None or c.subset > 0, f"`subset` must be positive, got {c.subset}"),
        (c.ngpu is None or c.ngpu > 0, f"`ngpu` must be positive, got {c.ngpu}"),
        (c.threads is None or (isinstance(c.threads, int) and c.threads > 0),
         f"`threads` must be a positive integer or None, got {c.threads!r}"),
        (not (c.resume and c.overwrite), "`resume` and `overwrite` exclude each other"),
        (isinstance(c.big_batch, int) and c.big_batch >= 1, f"`big_batch` must be >= 1, got {c.big_batch}"),
    ]
    for ok, message in checks:
        if not ok:
            raise LandscapeError(message)
    if c.init_from is not None and not os.path.isfile(c.init_from):
        raise LandscapeError(f"`init_from` {c.init_from!r} does not exist")
    if c.init_from and c.plan:
        raise LandscapeError("`plan` builds a pruned architecture from scratch; `init_from` takes a pruned "
                             "checkpoint's own widths: give one of them")
    if c.milestones is not None and any(m <= 0 for m in c.milestones):
        raise LandscapeError(f"`milestones` must be positive epochs, got {c.milestones}")
    quant_config(c)  # QuantConfig checks its own options


def resolved(c: TrainConfig, init: Checkpoint | None = None) -> dict:
    """The config as saved (``args``): plain Python types, with defaults that depend on others
    filled in (``init``: the ``init_from`` checkpoint, read), and ``effective_batch_size`` with
    ``big_batch``."""
    d = asdict(c)
    if c.milestones is not None:
        marks = c.milestones
    else:  # retraining from a checkpoint runs at a constant rate, as the pruning paper's 40 epochs
        marks = [] if c.init_from else default_milestones(c.epochs)
    d["milestones"] = [int(m) for m in marks]
    d["init_from_sha256"] = init.sha256 if init is not None else ""
    d["augment"] = c.augment if c.augment is not None else c.dataset in ("cifar10", "cifar100")
    d["out"] = c.out or default_out(c)
    if c.big_batch > 1:  # the loop runs batch_size * big_batch; args keep both, and the product
        d["effective_batch_size"] = c.batch_size * c.big_batch
    return d


def load_splits(c: TrainConfig) -> tuple[Dataset, Dataset, dict | None]:
    """The train and test splits the config asks for, and the label-noise record (or None)."""
    kw = dict(root=c.data_root, raw=c.raw_data, size=c.synthetic_size, seed=c.seed)
    if c.num_classes is not None:
        kw["num_classes"] = c.num_classes
    train_set = load_dataset(c.dataset, split="train", **kw)
    test_set = load_dataset(c.dataset, split="test", **kw)
    for split, data in (("train", train_set), ("test", test_set)):
        if len(data) == 0:
            raise LandscapeError(f"dataset {c.dataset!r} has an empty {split} split")
    if c.subset is not None:
        train_set, _ = train_set.subset(c.subset, seed=c.seed)
        test_set, _ = test_set.subset(c.subset, seed=c.seed)
    if c.num_classes is not None:
        ymax = int(max(train_set.y.max(), test_set.y.max()))
        if ymax >= c.num_classes:
            raise LandscapeError(f"`num_classes` {c.num_classes} but the labels go up to {ymax}")
        train_set.num_classes = test_set.num_classes = c.num_classes
    record = None
    if c.label_noise > 0:
        train_set, record = apply_label_noise(train_set, c.label_noise, seed=c.seed)
    return train_set, test_set, record


def build(config: TrainConfig, num_classes: int, in_channels: int, sample: torch.Tensor,
          init: Checkpoint | None = None, widths: Mapping[str, int] | None = None) -> nn.Module:
    """The network a run trains, built in one place: ``init`` (the ``init_from`` checkpoint, read
    once) in its architecture, or the architecture resized to ``widths`` (a pruned one from
    ``plan``: the paper's "scratch-train") and initialized; checked against a data sample."""
    c = config
    torch.manual_seed(c.seed)
    if init is not None:
        model = network(init, c.arch, num_classes, in_channels)
    else:
        model = build_model(c.arch, num_classes=num_classes, in_channels=in_channels)
        if widths:
            resize_(model, dict(widths))
        has_bn = any(isinstance(m, nn.modules.batchnorm._BatchNorm) for m in model.modules())
        if c.init == "original" or (c.init == "auto" and has_bn):
            init_params(model)
    model.eval()
    try:
        with torch.no_grad():
            probe = model(sample)
    except RuntimeError as exc:
        raise LandscapeError(f"architecture {c.arch!r} does not take {c.dataset} inputs of shape "
                             f"{tuple(sample.shape[1:])}: {first_line(exc)}") from None
    if probe.ndim != 2 or probe.shape[1] != num_classes:
        raise LandscapeError(f"architecture {c.arch!r} gives outputs of shape {tuple(probe.shape[1:])}, "
                             f"expected {num_classes} class scores")
    return model


def _widths_of(c: TrainConfig, num_classes: int, in_channels: int, init: Checkpoint | None) -> dict | None:
    """The channel widths a pruned network needs to be rebuilt: those ``plan`` gives it (shapes
    only, on the meta device), or those recorded in ``init`` (a pruned checkpoint); carried into
    every checkpoint of the run."""
    if c.plan:
        with torch.device("meta"):
            return plan_widths(build_model(c.arch, num_classes=num_classes, in_channels=in_channels), c.plan)
    return init.widths if init is not None else None


class TrainJob:
    """A training run assembled from a :class:`TrainConfig`: :attr:`loop` (a
    :class:`landscape.training.Loop` with its :attr:`folder`), ready to :meth:`run`.

    ``hooks``: :class:`TrainHook` objects, or functions that make one from the built model
    (``lambda model: quantize_(model, QuantConfig(...))``); the config's own quantization hook
    comes after them.
    """

    def __init__(self, config: TrainConfig, hooks: Sequence[HookSpec] = ()):
        c = self.config = config
        _validate(c)
        self.init = read_checkpoint(c.init_from, c.unsafe_pickle) if c.init_from else None  # read once
        self.args = resolved(c, self.init)
        self.out = self.args["out"]
        device = resolve_device(c.device)  # before the run folder is created
        self.folder = RunFolder(self.out, self.args, resume=c.resume, overwrite=c.overwrite, check=RESUME_KEYS,
                                own_files=(NOISE_FILE,))
        try:
            self.loop, self.noise = self._assemble(c, device, hooks)
        except BaseException:
            self.folder.close()
            raise

    def _assemble(self, c: TrainConfig, device: torch.device, hooks: Sequence[HookSpec]) -> tuple[Loop, dict | None]:
        if device.type == "cpu":
            keep_malloc_arenas()
        train_set, test_set, noise = load_splits(c)
        num_classes = c.num_classes or max(train_set.num_classes, test_set.num_classes)
        in_channels = int(train_set.x.shape[1]) if train_set.x.ndim == 4 else 1
        widths = _widths_of(c, num_classes, in_channels, self.init)
        model = build(c, num_classes, in_channels, train_set.x[:2], self.init, widths if c.plan else None)
        if c.channels_last:
            model = model.to(memory_format=torch.channels_last)
        model = model.to(device)
        net: nn.Module = model
        if device.type == "cuda":
            visible = torch.cuda.device_count()
            n_gpu = visible if c.ngpu is None else min(c.ngpu, visible)
            if n_gpu > 1:
                net = nn.DataParallel(model, device_ids=list(range(n_gpu)))
            torch.backends.cudnn.benchmark = True
        made = [h if isinstance(h, TrainHook) else h(model) for h in hooks]
        optimizer = make_optimizer(c.optimizer, model.parameters(), c)
        quant = quant_config(c)
        if quant is not None:  # quantized training: the model is quantized in place, the hook keeps it so

            made.append(quantize_(model, quant))
        record = {"arch": c.arch, "num_classes": num_classes, "in_channels": in_channels, "dataset": c.dataset}
        if noise is not None:
            changed = int((noise["original"] != noise["noisy"]).sum())
            record.update(label_noise_file=NOISE_FILE, label_noise_changed=changed)
        if widths:
            record["widths"] = widths
        augmenting = bool(self.args["augment"]) and train_set.x.ndim == 4
        loop = Loop(
            model, (train_set.x, train_set.y), optimizer,
            schedule=Milestones(c.lr, c.lr_decay, self.args["milestones"]),
            hooks=made,
            config=LoopConfig(epochs=c.epochs, batch_size=c.batch_size * c.big_batch,
                              eval_batch_size=c.eval_batch_size, seed=c.seed, save_every=c.save_every,
                              amp=c.amp, channels_last=c.channels_last, progress=c.progress),
            test_data=(test_set.x, test_set.y),
            loss=c.loss,
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
                np.savez(buffer, p=c.label_noise, seed=c.seed, **self.noise)
                write_bytes(os.path.join(self.out, NOISE_FILE), buffer.getbuffer())
            with using_threads(choose_threads(c.threads)):
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
    """Train ``config.arch`` on ``config.dataset`` and save the run folder (see the module doc).

    ``hooks``: :class:`TrainHook` objects, or functions that make one from the built model.
    ``on_epoch_end(epoch, row)`` is called after each epoch's checkpoint is written (row: the log
    line); raising in it stops the run as an interruption would, resumable with ``resume=True``.
    """
    return TrainJob(config, hooks).run(on_epoch_end)


__all__ = ["INITS", "RESUME_KEYS", "TrainConfig", "TrainJob", "TrainResult", "build", "default_out", "init_params",
           "load_splits", "quant_config", "resolved", "train"]
