"""Training the minimizers the landscapes are drawn around: ``train(TrainConfig(arch="resnet56"))``.

The recipe follows the original loss-landscape tool's ``cifar10/main.py``: SGD with Nesterov
momentum 0.9 (or Adam), weight decay 5e-4, learning rate x0.1 after 50%, 75% and 11/12 of the
epochs (150, 225, 275 of 300), its initialization (Kaiming-normal convs, N(0, 1e-3) linear
layers; used for networks with BatchNorm, while BN-free nets such as the MLP keep PyTorch's
default, under which they train), random crop + flip augmentation on CIFAR.

The run folder receives ``model_0.pt`` (the initialization), ``model_{epoch}.pt`` every
``save_every`` epochs and at the end, ``log.csv`` with the train/test loss and error of every
epoch, and ``resume.pt`` (the newest state, removed when the run finishes) so that an
interrupted run resumes where it stopped, bit for bit on the CPU.

Each checkpoint is ``{"state_dict", "epoch", "accuracy" (test accuracy, %), "acc" (the same,
under the original tool's key), "train_loss", "train_err", "test_loss", "test_err", "optimizer",
"args", "arch", "num_classes", "in_channels", "dataset"}``; it loads with
``torch.load(weights_only=True)`` and :func:`landscape.checkpoint.load_state_dict`.

Hooks: the loop is a small :class:`Trainer` that calls :class:`TrainHook` methods at fixed
places (start, before the forward pass, after the backward pass, after the optimizer step, end of
an epoch, when a checkpoint is written), so that a weight quantizer or a pruning mask acts
without copying the loop; a hook's ``state_dict`` travels in the checkpoints, so resume is exact.

Speed: the whole split stays on the device when it fits, batches are cut by indexing, the
augmentation is one batched gather, and the loop keeps its running sums on the device so it
never waits for the device before the end of an epoch.
"""

from __future__ import annotations

import csv
import math
import os
import re
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field

import numpy as np
import torch
from torch import nn

from landscape.checkpoint import sha256
from landscape.data import Dataset, apply_label_noise, augment, load_dataset
from landscape.errors import LandscapeError
from landscape.evaluate import evaluate, keep_malloc_arenas, resolve_device
from landscape.files import replacing
from landscape.jobs.network import load_model
from landscape.losses import LOSSES, accuracy, resolve_loss
from landscape.models import build_model, call_user, load_callable

LOG_COLUMNS = ["epoch", "lr", "train_loss", "train_err", "test_loss", "test_err", "seconds"]  # hooks may add
INITS = ("auto", "original", "torch")
CKPT_RE = re.compile(r"^model_(\d+)\.pt$")
RESUME_FILE = "resume.pt"
LOG_FILE = "log.csv"
NOISE_FILE = "label_noise.npz"
# Settings that must not change when a run is resumed (epochs, device, saving and display may).
RESUME_KEYS = (
    "arch", "dataset", "optimizer", "lr", "momentum", "nesterov", "weight_decay", "batch_size",
    "lr_decay", "milestones", "loss", "seed", "augment", "raw_data", "label_noise", "subset",
    "num_classes", "init", "synthetic_size", "init_from_sha256", "plan",
    "quant", "bits", "big_batch", "quant_scale", "quant_keep", "quant_step",  # quantized training
)


@dataclass
class TrainConfig:
    """Everything that defines a training run (saved as ``args`` in every checkpoint)."""

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


def default_milestones(epochs: int) -> list[int]:
    """The original schedule's epochs after which the rate decays: 150, 225, 275 of 300."""
    marks = [math.floor(epochs * f + 0.5) for f in (1 / 2, 3 / 4, 11 / 12)]
    return sorted({m for m in marks if 0 < m < epochs})


def lr_at(config: TrainConfig, epoch: int, milestones: list[int]) -> float:
    """Learning rate for (1-based) ``epoch``: decayed once for every milestone already passed."""
    return config.lr * config.lr_decay ** sum(1 for m in milestones if epoch > m)


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


# ----------------------------------------------------------------------------- validation


def _validate(c: TrainConfig) -> None:
    checks = [
        (c.optimizer in OPTIMIZERS or ":" in c.optimizer,
         f"`optimizer` must be one of {', '.join(OPTIMIZERS)} or package.module:callable, got {c.optimizer!r}"),
        (c.loss in LOSSES, f"`loss` must be one of {', '.join(LOSSES)}, got {c.loss!r}"),
        (c.init in INITS,
         f"`init` must be auto, original or torch, got {c.init!r}"),
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
    # -- quantized training (landscape.quant): QuantConfig checks its own options
    if c.quant is not None:
        from landscape.quant.config import QuantConfig

        QuantConfig.from_train_config(c)
    elif (c.bits, c.quant_scale, c.quant_keep, c.quant_step) != (1, "he", "none", "unit"):
        raise LandscapeError("`bits`, `quant_scale`, `quant_keep` and `quant_step` need `quant`")
    # --


# ------------------------------------------------------------------------------ run folder


def _checkpoints(out: str) -> dict[int, str]:
    found = {}
    if os.path.isdir(out):
        for name in os.listdir(out):
            m = CKPT_RE.match(name)
            if m:
                found[int(m.group(1))] = os.path.join(out, name)
    return found


def _read_ckpt(path: str) -> dict:
    try:
        obj = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # noqa: BLE001 - any failure means: not a usable checkpoint
        first = (str(exc).strip().splitlines() or [type(exc).__name__])[0]
        raise LandscapeError(f"cannot resume from {path!r}: {first}") from None
    if not isinstance(obj, dict) or "state_dict" not in obj or "epoch" not in obj:
        raise LandscapeError(f"cannot resume from {path!r}: not a landscape-train checkpoint")
    return obj


def _latest(out: str) -> tuple[int, str] | None:
    """The newest state in a run folder: the highest model_E.pt, or resume.pt if it is newer."""
    ckpts = _checkpoints(out)
    best = max(ckpts.items()) if ckpts else None
    resume = os.path.join(out, RESUME_FILE)
    if os.path.isfile(resume):
        epoch = int(_read_ckpt(resume)["epoch"])
        if best is None or epoch > best[0]:
            best = (epoch, resume)
    return best


def _prepare_out(c: TrainConfig, out: str) -> tuple[dict | None, list[str]]:
    """Check the run folder against `resume`/`overwrite`. Returns the checkpoint to resume from
    and the files that `overwrite` will delete (once the data and model are known to work)."""
    if os.path.exists(out) and not os.path.isdir(out):
        raise LandscapeError(f"`out` {out!r} exists and is not a folder")
    ours = [n for n in os.listdir(out)] if os.path.isdir(out) else []
    ours = [n for n in ours if CKPT_RE.match(n) or n in (RESUME_FILE, LOG_FILE, NOISE_FILE)]
    doomed = [os.path.join(out, n) for n in ours] if c.overwrite else []
    if c.overwrite:
        ours = []
    latest = _latest(out) if ours else None
    if ours and not c.resume:
        if latest is None:
            state = "a log but no checkpoint"
        else:
            saved = _read_ckpt(latest[1]).get("args", {}).get("epochs")
            state = "finished" if saved is not None and latest[0] >= saved else "unfinished"
            state = f"{state}, last saved epoch {latest[0]}"
        raise LandscapeError(
            f"{out!r} already holds a training run ({state}); pass `resume` to continue it "
            "or `overwrite` to start again"
        )
    try:
        os.makedirs(out, exist_ok=True)
        probe = os.path.join(out, ".write_test")
        with open(probe, "w"):
            pass
        os.remove(probe)
    except OSError as exc:
        raise LandscapeError(f"cannot write to `out` {out!r} ({exc.strerror or exc})") from None
    if latest is None:
        if c.resume:
            raise LandscapeError(f"`resume`: {out!r} holds no checkpoint to resume from; drop `resume` "
                                 "to start a new run there")
        return None, doomed
    ckpt = _read_ckpt(latest[1])
    saved = ckpt.get("args", {})
    differ = [k for k in RESUME_KEYS if k in saved and saved[k] != _resolved(c).get(k)]
    if differ:
        shown = ", ".join(f"{k} {saved[k]!r} -> {_resolved(c)[k]!r}" for k in differ)
        raise LandscapeError(f"cannot resume {out!r} with different settings: {shown}")
    return ckpt, doomed


def _resolved(c: TrainConfig) -> dict:
    """The config as saved: plain Python types, with defaults that depend on others filled in."""
    d = asdict(c)
    if c.milestones is not None:
        marks = c.milestones
    else:  # retraining from a checkpoint runs at a constant rate, as the pruning paper's 40 epochs
        marks = [] if c.init_from else default_milestones(c.epochs)
    d["milestones"] = [int(m) for m in marks]
    d["init_from_sha256"] = sha256(c.init_from) if c.init_from and os.path.isfile(c.init_from) else ""
    d["augment"] = c.augment if c.augment is not None else c.dataset in ("cifar10", "cifar100")
    return d


def _save(path: str, obj: dict) -> None:
    with replacing(path) as tmp:
        torch.save(obj, tmp)


def _write_log(path: str, rows: list[dict]) -> None:
    columns = LOG_COLUMNS + [k for r in rows for k in r if k not in LOG_COLUMNS]
    columns = list(dict.fromkeys(columns))
    with replacing(path) as tmp, open(tmp, "w", newline="") as f:
        w = csv.DictWriter(f, fieldnames=columns)
        w.writeheader()
        for r in rows:
            w.writerow({k: r.get(k, "") for k in columns})


def _read_log(path: str, upto: int) -> list[dict]:
    if not os.path.isfile(path):
        return []
    with open(path, newline="") as f:
        rows = [r for r in csv.DictReader(f) if r.get("epoch", "").isdigit()]
    out = []
    for r in rows:
        if int(r["epoch"]) <= upto:
            out.append({k: (int(v) if k == "epoch" else float(v)) for k, v in r.items() if v not in ("", None)})
    return out


# ----------------------------------------------------------------------------------- data


def _load_data(c: TrainConfig) -> tuple[Dataset, Dataset, dict | None]:
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


# --------------------------------------------------------------------------- optimizers


def _sgd(params, c: TrainConfig) -> torch.optim.Optimizer:
    return torch.optim.SGD(params, lr=c.lr, momentum=c.momentum, weight_decay=c.weight_decay,
                           nesterov=c.nesterov and c.momentum > 0)


def _adam(params, c: TrainConfig) -> torch.optim.Optimizer:
    return torch.optim.Adam(params, lr=c.lr, weight_decay=c.weight_decay)


OPTIMIZERS: dict[str, Callable[..., torch.optim.Optimizer]] = {"sgd": _sgd, "adam": _adam}


def make_optimizer(name: str, params, config: TrainConfig) -> torch.optim.Optimizer:
    """The optimizer ``name`` (a key of :data:`OPTIMIZERS`, or ``package.module:callable`` called
    as ``callable(params, config)``) over ``params``."""
    make = OPTIMIZERS.get(name) or load_callable(name, "optimizer")
    opt = call_user(make, f"optimizer {name!r}", params, config)
    if not isinstance(opt, torch.optim.Optimizer):
        raise LandscapeError(f"optimizer {name!r} returned {type(opt).__name__}, not a torch.optim.Optimizer")
    return opt


# -------------------------------------------------------------------------------- hooks


class TrainHook:
    """A plug-in of the training loop; override the methods you need (all do nothing here).

    Per step the trainer calls ``before_forward`` (the batch is on the device), runs the forward
    and backward passes, calls ``after_backward`` (gradients are in ``.grad``), steps the optimizer
    and calls ``after_step``. The test pass of each epoch evaluates the model as the hooks leave it
    after ``after_step``; then ``on_epoch_end`` may add columns to the log row, and
    ``on_checkpoint`` may edit a checkpoint dict before it is saved. ``state_dict`` is saved in
    every checkpoint (under ``"hooks"``) and handed back to ``load_state_dict`` on resume, before
    ``on_start``.
    """

    name = "hook"

    def on_start(self, trainer: Trainer) -> None: ...

    def before_forward(self, trainer: Trainer, batch) -> None: ...

    def after_backward(self, trainer: Trainer) -> None: ...

    def after_step(self, trainer: Trainer) -> None: ...

    def on_epoch_end(self, trainer: Trainer, epoch: int, row: dict) -> None: ...

    def on_checkpoint(self, trainer: Trainer, state: dict) -> None: ...

    def state_dict(self) -> dict:
        return {}

    def load_state_dict(self, state: dict) -> None: ...


HookSpec = TrainHook | Callable[[nn.Module], TrainHook]


# ---------------------------------------------------------------------------------- loop


def _on_device(x: torch.Tensor, device: torch.device) -> torch.Tensor:
    """Move a whole split to the device when it takes under a quarter of the free memory."""
    if device.type != "cuda":
        return x.to(device)
    free, _ = torch.cuda.mem_get_info(device)
    if x.numel() * x.element_size() < free // 4:
        return x.to(device)
    return x.pin_memory()


def build(config: TrainConfig, num_classes: int, in_channels: int, sample: torch.Tensor) -> nn.Module:
    """The network a run trains, built in one place: the architecture (with a pruned checkpoint's
    widths when ``init_from`` names one), initialized, and checked against a data sample."""
    c = config
    torch.manual_seed(c.seed)
    if c.init_from:
        model = load_model(c.arch, c.init_from, num_classes=num_classes, in_channels=in_channels,
                           unsafe_pickle=c.unsafe_pickle)
    else:
        model = build_model(c.arch, num_classes=num_classes, in_channels=in_channels)
        if c.plan:  # the paper's "scratch-train": the pruned architecture, freshly initialized
            from landscape.prune import plan_widths, resize_

            resize_(model, plan_widths(model, c.plan))
        has_bn = any(isinstance(m, nn.modules.batchnorm._BatchNorm) for m in model.modules())
        if c.init == "original" or (c.init == "auto" and has_bn):
            init_params(model)
    model.eval()
    try:
        with torch.no_grad():
            probe = model(sample)
    except RuntimeError as exc:
        first = str(exc).strip().splitlines()[0]
        raise LandscapeError(f"architecture {c.arch!r} does not take {c.dataset} inputs of shape "
                             f"{tuple(sample.shape[1:])}: {first}") from None
    if probe.ndim != 2 or probe.shape[1] != num_classes:
        raise LandscapeError(f"architecture {c.arch!r} gives outputs of shape {tuple(probe.shape[1:])}, "
                             f"expected {num_classes} class scores")
    return model


class Trainer:
    """One training run (see the module docstring); :meth:`run` trains and returns the result.

    What hooks may use: ``config``, ``out``, ``device``, ``model`` (the network itself, also when
    ``net`` wraps it in DataParallel), ``optimizer``, ``epoch``, ``step`` (optimizer steps so
    far), ``resumed`` (True when continuing a run).
    """

    def __init__(self, config: TrainConfig, hooks: Sequence[HookSpec] = ()):
        c = self.config = config
        _validate(c)
        self.out = c.out or default_out(c)
        self.device = resolve_device(c.device)  # before _prepare_out creates the folder
        self.resume_ckpt, self._doomed = _prepare_out(c, self.out)
        self.resumed = self.resume_ckpt is not None
        if self.device.type == "cpu":
            keep_malloc_arenas()
        self.train_set, self.test_set, self._noise = _load_data(c)
        self.num_classes = c.num_classes or max(self.train_set.num_classes, self.test_set.num_classes)
        self.in_channels = int(self.train_set.x.shape[1]) if self.train_set.x.ndim == 4 else 1
        model = build(c, self.num_classes, self.in_channels, self.train_set.x[:2])
        if c.channels_last:
            model = model.to(memory_format=torch.channels_last)
        self.model = model.to(self.device)
        self.net: nn.Module = self.model
        if self.device.type == "cuda":
            visible = torch.cuda.device_count()
            n_gpu = visible if c.ngpu is None else min(c.ngpu, visible)
            if n_gpu > 1:
                self.net = nn.DataParallel(self.model, device_ids=list(range(n_gpu)))
            torch.backends.cudnn.benchmark = True
        self.hooks: list[TrainHook] = [h if isinstance(h, TrainHook) else h(self.model) for h in hooks]
        self.optimizer = make_optimizer(c.optimizer, self.model.parameters(), c)
        self.loss_name, self.loss_fn = resolve_loss(c.loss)
        self.memory_format = torch.channels_last if c.channels_last else torch.contiguous_format
        self.amp_dtype = (torch.float16 if self.device.type == "cuda" else torch.bfloat16) if c.amp else None
        self.scaler = torch.amp.GradScaler("cuda") if c.amp and self.device.type == "cuda" else None
        self.args = _resolved(c)
        self.args["out"] = self.out
        # -- quantized training (landscape.quant): the hook quantizes the model in place; big batches
        if c.quant is not None:
            from landscape.quant import QuantConfig, quantize_

            self.hooks.append(quantize_(self.model, QuantConfig.from_train_config(c)))
        if c.big_batch > 1:  # the loop runs batch_size * big_batch; args keep both, and the product
            from dataclasses import replace

            self.config = c = replace(c, batch_size=c.batch_size * c.big_batch)
            self.args["effective_batch_size"] = c.batch_size
        # --
        self.epoch, self.step = 0, 0
        self.history: list[dict] = []
        self.saved: list[str] = []

    # -- pieces -------------------------------------------------------------------------

    def prep(self, x: torch.Tensor) -> torch.Tensor:
        x = x.to(self.device, non_blocking=True)
        return x.contiguous(memory_format=self.memory_format) if x.ndim == 4 else x

    def _forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.amp_dtype is None:
            return self.net(x)
        with torch.autocast(self.device.type, dtype=self.amp_dtype):
            return self.net(x)

    def evaluate(self, data: tuple[torch.Tensor, torch.Tensor]) -> tuple[float, float]:
        """Mean loss and error (%) of the model in eval mode on ``(x, y)``: the evaluator's loop."""
        x, y = data
        b = self.config.eval_batch_size

        def batches():
            for i in range(0, len(y), b):
                yield (self.prep(x[i:i + b]), y[i:i + b].to(self.device, non_blocking=True)), len(y[i:i + b])

        self.net.eval()
        values = evaluate(self.net, batches(), self.loss_fn, accuracy, autocast_dtype=self.amp_dtype)
        return values["loss"], 100.0 - values["acc"]

    def train_epoch(self, data: tuple[torch.Tensor, torch.Tensor], pad_fill, bar) -> tuple[float, float]:
        c, device, epoch = self.config, self.device, self.epoch
        x, y = data
        n = len(y)
        torch.manual_seed(c.seed * 1_000_003 + epoch)  # for any dropout: a function of the epoch
        gen_device = x.device if x.device.type == "cuda" else torch.device("cpu")
        gen = torch.Generator(device=gen_device).manual_seed(c.seed * 1_000_003 + epoch)
        perm = torch.randperm(n, generator=gen, device=gen_device).to(x.device)
        do_aug = bool(self.args["augment"]) and x.ndim == 4
        self.net.train()
        loss_sum = torch.zeros((), device=device)
        wrong = torch.zeros((), device=device, dtype=torch.long)
        seen = 0
        for i in range(0, n, c.batch_size):
            idx = perm[i:i + c.batch_size]
            if len(idx) < 2 and i > 0:  # BatchNorm cannot train on a batch of one sample
                break
            xb = x[idx]
            if do_aug:  # where the data lives, with the generator that lives there too
                xb = augment(xb, gen, fill=pad_fill)
            batch = (self.prep(xb), y[idx].to(device, non_blocking=True))
            for h in self.hooks:
                h.before_forward(self, batch)
            self.optimizer.zero_grad(set_to_none=True)
            out = self._forward(batch[0]).float()
            loss = self.loss_fn(out, batch)
            if self.scaler is not None:
                self.scaler.scale(loss).backward()
            else:
                loss.backward()
            for h in self.hooks:
                h.after_backward(self)
            if self.scaler is not None:
                self.scaler.step(self.optimizer)
                self.scaler.update()
            else:
                self.optimizer.step()
            self.step += 1
            for h in self.hooks:
                h.after_step(self)
            loss_sum += loss.detach() * len(idx)
            wrong += (out.detach().argmax(1) != batch[1]).sum()
            seen += len(idx)
            if bar is not None:
                bar.update(1)
        return loss_sum.item() / seen, 100.0 * wrong.item() / seen

    def checkpoint(self, epoch: int, row: dict) -> dict:
        """The checkpoint dict of the model as it stands after ``epoch``."""
        state = {
            "state_dict": {k: v.detach().cpu() for k, v in self.model.state_dict().items()},
            "epoch": epoch,
            "accuracy": 100.0 - row["test_err"],
            "acc": 100.0 - row["test_err"],
            **{k: row[k] for k in ("train_loss", "train_err", "test_loss", "test_err")},
            "optimizer": self.optimizer.state_dict(),
            "step": self.step,
            "args": self.args,
            "arch": self.config.arch, "num_classes": self.num_classes, "in_channels": self.in_channels,
            "dataset": self.config.dataset, **self._noise_meta,
            "hooks": {f"{k}:{h.name}": h.state_dict() for k, h in enumerate(self.hooks)},
        }
        if self.scaler is not None:
            state["scaler"] = self.scaler.state_dict()
        if self._widths:
            state["widths"] = self._widths
        for h in self.hooks:
            h.on_checkpoint(self, state)
        return state

    def _load(self, ckpt: dict) -> int:
        self.model.load_state_dict(ckpt["state_dict"])
        self.optimizer.load_state_dict(ckpt["optimizer"])
        if self.scaler is not None and "scaler" in ckpt:
            self.scaler.load_state_dict(ckpt["scaler"])
        saved = ckpt.get("hooks", {})
        for k, h in enumerate(self.hooks):
            key = f"{k}:{h.name}"
            if key not in saved:
                raise LandscapeError(f"cannot resume {self.out!r}: its checkpoints were written without the "
                                     f"training hook {h.name!r}")
            h.load_state_dict(saved[key])
        self.step = int(ckpt.get("step", 0))
        return int(ckpt["epoch"]) + 1

    # -- the run ------------------------------------------------------------------------

    def run(self, on_epoch_end: Callable[[int, dict], None] | None = None) -> TrainResult:
        """Train (or continue) the run; see :func:`train`."""
        c, out = self.config, self.out
        milestones = self.args["milestones"]
        for path in self._doomed:  # everything is known to work: only now touch the run folder
            os.remove(path)
        self._noise_meta = {}
        if self._noise is not None:
            np.savez(os.path.join(out, NOISE_FILE), p=c.label_noise, seed=c.seed, **self._noise)
            changed = int((self._noise["original"] != self._noise["noisy"]).sum())
            self._noise_meta = {"label_noise_file": NOISE_FILE, "label_noise_changed": changed}
        self._widths = _widths_of(c, self.num_classes, self.in_channels)
        x_train = _on_device(self.train_set.x, self.device)
        y_train = self.train_set.y.to(x_train.device)
        test_data = (_on_device(self.test_set.x, self.device), self.test_set.y.to(self.device))
        pad_fill = self.train_set.info.get("pad_fill")
        log_path = os.path.join(out, LOG_FILE)

        if self.resume_ckpt is not None:
            start = self._load(self.resume_ckpt)
            self.history = _read_log(log_path, start - 1)
            _write_log(log_path, self.history)
            self.saved = [p for e, p in sorted(_checkpoints(out).items()) if e < start]
        for h in self.hooks:
            h.on_start(self)
        if self.resume_ckpt is None:
            t0 = time.perf_counter()
            train_loss, train_err = self.evaluate((x_train, y_train))
            test_loss, test_err = self.evaluate(test_data)
            row = {"epoch": 0, "lr": lr_at(c, 1, milestones), "train_loss": train_loss,
                   "train_err": train_err, "test_loss": test_loss, "test_err": test_err,
                   "seconds": time.perf_counter() - t0}
            for h in self.hooks:
                h.on_epoch_end(self, 0, row)
            self.history = [row]
            _write_log(log_path, self.history)
            path = os.path.join(out, "model_0.pt")
            _save(path, self.checkpoint(0, row))
            self.saved.append(path)
            start = 1

        steps = math.ceil(len(y_train) / c.batch_size)
        bars = None
        if c.progress and start <= c.epochs:
            from tqdm import tqdm

            # disable=None: bars only on a terminal; the per-epoch lines are printed either way.
            outer = tqdm(total=c.epochs, initial=start - 1, desc="epochs", file=sys.stderr,
                         dynamic_ncols=True, disable=None)
            inner = tqdm(total=steps, desc=f"epoch {start}", leave=False, file=sys.stderr,
                         dynamic_ncols=True, disable=None)
            bars = (outer, inner)
        try:
            for epoch in range(start, c.epochs + 1):
                self.epoch = epoch
                lr = lr_at(c, epoch, milestones)
                for group in self.optimizer.param_groups:
                    group["lr"] = lr
                t0 = time.perf_counter()
                if bars is not None:
                    bars[1].reset(total=steps)
                    bars[1].set_description(f"epoch {epoch}")
                train_loss, train_err = self.train_epoch((x_train, y_train), pad_fill, bars[1] if bars else None)
                if not math.isfinite(train_loss):
                    kept = max(e for e, _ in _checkpoints(out).items()) if _checkpoints(out) else 0
                    raise LandscapeError(
                        f"training diverged in epoch {epoch}: the training loss is {train_loss} (learning "
                        f"rate {lr:g} too high?); stopped, the checkpoints up to epoch {max(kept, epoch - 1)} "
                        f"in {out!r} are kept")
                test_loss, test_err = self.evaluate(test_data)
                row = {"epoch": epoch, "lr": lr, "train_loss": train_loss, "train_err": train_err,
                       "test_loss": test_loss, "test_err": test_err,
                       "seconds": time.perf_counter() - t0}
                for h in self.hooks:
                    h.on_epoch_end(self, epoch, row)
                self.history.append(row)
                _write_log(log_path, self.history)
                state = self.checkpoint(epoch, row)
                if epoch % c.save_every == 0 or epoch == c.epochs:
                    path = os.path.join(out, f"model_{epoch}.pt")
                    _save(path, state)
                    self.saved.append(path)
                else:
                    _save(os.path.join(out, RESUME_FILE), state)
                if bars is not None:
                    bars[0].update(1)
                    bars[0].write(
                        f"epoch {epoch}/{c.epochs} lr {lr:.4g} train loss {train_loss:.4f} "
                        f"err {train_err:.2f}% test loss {test_loss:.4f} err {test_err:.2f}% "
                        f"({row['seconds']:.1f} s)", file=sys.stdout)
                if on_epoch_end is not None:
                    on_epoch_end(epoch, row)
        finally:
            if bars is not None:
                bars[1].close()
                bars[0].close()
        resume_path = os.path.join(out, RESUME_FILE)
        if os.path.isfile(resume_path):  # finished: the last model_E.pt holds the newest state
            os.remove(resume_path)
        if not self.history:
            raise LandscapeError(f"{out!r} has no epochs in its log.csv to resume from; use `overwrite` "
                                 "to train again")
        final = self.history[-1]
        return TrainResult(out, int(final["epoch"]), 100.0 - final["test_err"], self.history, self.saved,
                           self.model.cpu())


def _widths_of(c: TrainConfig, num_classes: int, in_channels: int) -> dict | None:
    """The channel widths a pruned network needs to be rebuilt: those ``plan`` gives it, or those
    recorded in ``init_from`` (a pruned checkpoint); carried into every checkpoint of the run."""
    if c.plan:
        from landscape.prune import plan_widths

        return plan_widths(build_model(c.arch, num_classes=num_classes, in_channels=in_channels), c.plan)
    if not c.init_from:
        return None
    from landscape.checkpoint import read_checkpoint

    return read_checkpoint(c.init_from, c.unsafe_pickle).widths


def train(
    config: TrainConfig,
    on_epoch_end: Callable[[int, dict], None] | None = None,
    hooks: Sequence[HookSpec] = (),
) -> TrainResult:
    """Train ``config.arch`` on ``config.dataset`` and save the run folder (see the module doc).

    ``hooks``: :class:`TrainHook` objects, or functions that make one from the built model
    (``lambda model: quantize_(model, QuantConfig(...))``). ``on_epoch_end(epoch, row)`` is called
    after each epoch's checkpoint is written (row: the log line); raising in it stops the run as
    an interruption would, resumable with ``resume=True``.
    """
    return Trainer(config, hooks).run(on_epoch_end)


__all__ = [
    "OPTIMIZERS", "TrainConfig", "TrainHook", "TrainResult", "Trainer", "build", "default_milestones",
    "default_out", "init_params", "lr_at", "make_optimizer", "train",
]
