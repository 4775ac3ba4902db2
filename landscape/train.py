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
from collections.abc import Callable
from dataclasses import asdict, dataclass, field

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from landscape.data import Dataset, apply_label_noise, augment, load_dataset
from landscape.errors import LandscapeError
from landscape.evaluate import keep_malloc_arenas, resolve_device
from landscape.files import replacing
from landscape.models import build_model

LOG_COLUMNS = ["epoch", "lr", "train_loss", "train_err", "test_loss", "test_err", "seconds"]
CKPT_RE = re.compile(r"^model_(\d+)\.pt$")
RESUME_FILE = "resume.pt"
LOG_FILE = "log.csv"
NOISE_FILE = "label_noise.npz"
# Settings that must not change when a run is resumed (epochs, device, saving and display may).
RESUME_KEYS = (
    "arch", "dataset", "optimizer", "lr", "momentum", "nesterov", "weight_decay", "batch_size",
    "lr_decay", "milestones", "loss", "seed", "augment", "raw_data", "label_noise", "subset",
    "num_classes", "init", "synthetic_size",
)


@dataclass
class TrainConfig:
    """Everything that defines a training run (saved as ``args`` in every checkpoint)."""

    arch: str = "resnet56"
    dataset: str = "cifar10"
    data_root: str | None = None
    out: str | None = None  # default: runs/<arch>_<optimizer>_lr=<lr>_bs=<bs>_wd=<wd>...
    optimizer: str = "sgd"  # sgd | adam
    lr: float = 0.1
    momentum: float = 0.9
    nesterov: bool = True
    weight_decay: float = 5e-4
    batch_size: int = 128
    epochs: int = 300
    lr_decay: float = 0.1
    milestones: list[int] | None = None  # None: 50%, 75% and 11/12 of the epochs
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
    synthetic_size: int = 2048
    save_every: int = 10
    eval_batch_size: int = 1024
    resume: bool = False
    overwrite: bool = False
    progress: bool = True


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
        (c.optimizer in ("sgd", "adam"), f"--optimizer must be sgd or adam, got {c.optimizer!r}"),
        (c.loss in ("crossentropy", "mse"), f"--loss must be crossentropy or mse, got {c.loss!r}"),
        (c.init in ("auto", "original", "torch"),
         f"--init must be auto, original or torch, got {c.init!r}"),
        (c.lr > 0 and math.isfinite(c.lr), f"--lr must be positive, got {c.lr}"),
        (c.batch_size > 0, f"--batch-size must be positive, got {c.batch_size}"),
        (c.eval_batch_size > 0, f"--eval-batch-size must be positive, got {c.eval_batch_size}"),
        (c.epochs > 0, f"--epochs must be positive, got {c.epochs}"),
        (c.save_every > 0, f"--save-every must be positive, got {c.save_every}"),
        (c.weight_decay >= 0, f"--weight-decay must be >= 0, got {c.weight_decay}"),
        (c.momentum >= 0, f"--momentum must be >= 0, got {c.momentum}"),
        (c.lr_decay > 0, f"--lr-decay must be positive, got {c.lr_decay}"),
        (0.0 <= c.label_noise <= 1.0, f"--label-noise must be in [0, 1], got {c.label_noise}"),
        (c.subset is None or c.subset > 0, f"--subset must be positive, got {c.subset}"),
        (c.ngpu is None or c.ngpu > 0, f"--ngpu must be positive, got {c.ngpu}"),
        (not (c.resume and c.overwrite), "--resume and --overwrite exclude each other"),
    ]
    for ok, message in checks:
        if not ok:
            raise LandscapeError(message)
    if c.milestones is not None and any(m <= 0 for m in c.milestones):
        raise LandscapeError(f"--milestones must be positive epochs, got {c.milestones}")


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
    """Check the run folder against --resume/--overwrite. Returns the checkpoint to resume from
    and the files that --overwrite will delete (once the data and model are known to work)."""
    if os.path.exists(out) and not os.path.isdir(out):
        raise LandscapeError(f"--out {out!r} exists and is not a folder")
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
            f"{out!r} already holds a training run ({state}); pass --resume to continue it "
            "or --overwrite to start again"
        )
    try:
        os.makedirs(out, exist_ok=True)
        probe = os.path.join(out, ".write_test")
        with open(probe, "w"):
            pass
        os.remove(probe)
    except OSError as exc:
        raise LandscapeError(f"cannot write to --out {out!r} ({exc.strerror or exc})") from None
    if latest is None:
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
    marks = c.milestones if c.milestones is not None else default_milestones(c.epochs)
    d["milestones"] = [int(m) for m in marks]
    d["augment"] = c.augment if c.augment is not None else c.dataset in ("cifar10", "cifar100")
    return d


def _save(path: str, obj: dict) -> None:
    with replacing(path) as tmp:
        torch.save(obj, tmp)


def _write_log(path: str, rows: list[dict]) -> None:
    with replacing(path) as tmp, open(tmp, "w", newline="") as f:
        w = csv.DictWriter(f, fieldnames=LOG_COLUMNS)
        w.writeheader()
        for r in rows:
            w.writerow({k: r[k] for k in LOG_COLUMNS})


def _read_log(path: str, upto: int) -> list[dict]:
    if not os.path.isfile(path):
        return []
    with open(path, newline="") as f:
        rows = [r for r in csv.DictReader(f) if r.get("epoch", "").isdigit()]
    out = []
    for r in rows:
        if int(r["epoch"]) <= upto:
            out.append({k: (int(r[k]) if k == "epoch" else float(r[k])) for k in LOG_COLUMNS})
    return out


# ----------------------------------------------------------------------------------- data


def _load_data(c: TrainConfig) -> tuple[Dataset, Dataset, dict | None]:
    kw = dict(root=c.data_root, raw=c.raw_data, size=c.synthetic_size, seed=c.seed)
    if c.num_classes is not None:
        kw["num_classes"] = c.num_classes
    train_set = load_dataset(c.dataset, split="train", **kw)
    test_set = load_dataset(c.dataset, split="test", **kw)
    if c.subset is not None:
        train_set, _ = train_set.subset(c.subset, seed=c.seed)
        test_set, _ = test_set.subset(c.subset, seed=c.seed)
    if c.num_classes is not None:
        ymax = int(max(train_set.y.max(), test_set.y.max()))
        if ymax >= c.num_classes:
            raise LandscapeError(f"--num-classes {c.num_classes} but the labels go up to {ymax}")
        train_set.num_classes = test_set.num_classes = c.num_classes
    record = None
    if c.label_noise > 0:
        train_set, record = apply_label_noise(train_set, c.label_noise, seed=c.seed)
    return train_set, test_set, record


# ---------------------------------------------------------------------------------- loop


class _Runner:
    """Forward/backward on one device with the optional memory format and autocast."""

    def __init__(self, c: TrainConfig, model: nn.Module, device: torch.device, num_classes: int):
        self.c, self.device, self.num_classes = c, device, num_classes
        self.memory_format = torch.channels_last if c.channels_last else torch.contiguous_format
        self.amp_dtype = None
        if c.amp:
            self.amp_dtype = torch.float16 if device.type == "cuda" else torch.bfloat16
        self.scaler = torch.amp.GradScaler("cuda") if c.amp and device.type == "cuda" else None
        self.model = model

    def prep(self, x: torch.Tensor) -> torch.Tensor:
        x = x.to(self.device, non_blocking=True)
        return x.contiguous(memory_format=self.memory_format) if x.ndim == 4 else x

    def loss(self, logits: torch.Tensor, y: torch.Tensor, reduction: str = "mean") -> torch.Tensor:
        logits = logits.float()
        if self.c.loss == "mse":
            target = F.one_hot(y, self.num_classes).float()
            per = F.mse_loss(F.softmax(logits, 1), target, reduction="none").mean(1)
            return per.mean() if reduction == "mean" else per.sum()
        return F.cross_entropy(logits, y, reduction=reduction)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.amp_dtype is None:
            return self.model(x)
        with torch.autocast(self.device.type, dtype=self.amp_dtype):
            return self.model(x)


def _evaluate(
    runner: _Runner, data: tuple[torch.Tensor, torch.Tensor], batch: int
) -> tuple[float, float]:
    """Mean loss and error (%) of the model in eval mode on (x, y)."""
    x, y = data
    runner.model.eval()
    loss_sum = torch.zeros((), device=runner.device)
    wrong = torch.zeros((), device=runner.device, dtype=torch.long)
    with torch.inference_mode():
        for i in range(0, len(y), batch):
            xb = runner.prep(x[i:i + batch])
            yb = y[i:i + batch].to(runner.device, non_blocking=True)
            out = runner.forward(xb)
            loss_sum += runner.loss(out, yb, reduction="sum")
            wrong += (out.argmax(1) != yb).sum()
    n = len(y)
    return loss_sum.item() / n, 100.0 * wrong.item() / n


def _on_device(x: torch.Tensor, device: torch.device) -> torch.Tensor:
    """Move a whole split to the device when it takes under a quarter of the free memory."""
    if device.type != "cuda":
        return x.to(device)
    free, _ = torch.cuda.mem_get_info(device)
    if x.numel() * x.element_size() < free // 4:
        return x.to(device)
    return x.pin_memory()


def _train_epoch(
    runner: _Runner,
    optimizer: torch.optim.Optimizer,
    data: tuple[torch.Tensor, torch.Tensor],
    epoch: int,
    pad_fill: list[float] | None,
    bar,
) -> tuple[float, float]:
    c, device = runner.c, runner.device
    x, y = data
    n = len(y)
    torch.manual_seed(c.seed * 1_000_003 + epoch)  # for any dropout: a function of the epoch
    gen_device = x.device if x.device.type == "cuda" else torch.device("cpu")
    gen = torch.Generator(device=gen_device).manual_seed(c.seed * 1_000_003 + epoch)
    perm = torch.randperm(n, generator=gen, device=gen_device).to(x.device)
    do_aug = bool(_resolved(c)["augment"]) and x.ndim == 4
    runner.model.train()
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
        xb, yb = runner.prep(xb), y[idx].to(device, non_blocking=True)
        optimizer.zero_grad(set_to_none=True)
        out = runner.forward(xb)
        loss = runner.loss(out, yb)
        if runner.scaler is not None:
            runner.scaler.scale(loss).backward()
            runner.scaler.step(optimizer)
            runner.scaler.update()
        else:
            loss.backward()
            optimizer.step()
        loss_sum += loss.detach() * len(yb)
        wrong += (out.detach().argmax(1) != yb).sum()
        seen += len(yb)
        if bar is not None:
            bar.update(1)
    return loss_sum.item() / seen, 100.0 * wrong.item() / seen


def train(
    config: TrainConfig,
    on_epoch_end: Callable[[int, dict], None] | None = None,
) -> TrainResult:
    """Train ``config.arch`` on ``config.dataset`` and save the run folder (see the module doc).

    ``on_epoch_end(epoch, row)`` is called after each epoch's checkpoint is written (row: the
    log line); raising in it stops the run as an interruption would, resumable with
    ``resume=True``.
    """
    c = config
    _validate(c)
    out = c.out or default_out(c)
    device = resolve_device(c.device)  # before _prepare_out creates the folder
    resume_ckpt, doomed = _prepare_out(c, out)
    if device.type == "cpu":
        keep_malloc_arenas()
    train_set, test_set, noise_record = _load_data(c)
    num_classes = c.num_classes or max(train_set.num_classes, test_set.num_classes)
    in_channels = int(train_set.x.shape[1]) if train_set.x.ndim == 4 else 1

    torch.manual_seed(c.seed)
    model = build_model(c.arch, num_classes=num_classes, in_channels=in_channels)
    has_bn = any(isinstance(m, nn.modules.batchnorm._BatchNorm) for m in model.modules())
    if c.init == "original" or (c.init == "auto" and has_bn):
        init_params(model)
    model.eval()
    try:
        with torch.no_grad():
            probe = model(train_set.x[:2])
    except RuntimeError as exc:
        first = str(exc).strip().splitlines()[0]
        raise LandscapeError(
            f"architecture {c.arch!r} does not take {c.dataset} inputs of shape "
            f"{tuple(train_set.x.shape[1:])}: {first}"
        ) from None
    if probe.ndim != 2 or probe.shape[1] != num_classes:
        raise LandscapeError(
            f"architecture {c.arch!r} gives outputs of shape {tuple(probe.shape[1:])}, "
            f"expected {num_classes} class scores"
        )
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

    if c.optimizer == "sgd":
        opt: torch.optim.Optimizer = torch.optim.SGD(
            model.parameters(), lr=c.lr, momentum=c.momentum, weight_decay=c.weight_decay,
            nesterov=c.nesterov and c.momentum > 0,
        )
    else:
        opt = torch.optim.Adam(model.parameters(), lr=c.lr, weight_decay=c.weight_decay)
    runner = _Runner(c, net, device, num_classes)
    args = _resolved(c)
    args["out"] = out
    milestones = args["milestones"]

    # Everything is known to work: only now touch the run folder.
    for path in doomed:
        os.remove(path)
    noise = {}
    if noise_record is not None:
        np.savez(os.path.join(out, NOISE_FILE), p=c.label_noise, seed=c.seed, **noise_record)
        changed = int((noise_record["original"] != noise_record["noisy"]).sum())
        noise = {"label_noise_file": NOISE_FILE, "label_noise_changed": changed}

    x_train = _on_device(train_set.x, device)
    y_train = train_set.y.to(x_train.device)
    test_data = (_on_device(test_set.x, device), test_set.y.to(device))
    pad_fill = train_set.info.get("pad_fill")
    log_path = os.path.join(out, LOG_FILE)

    meta = {"arch": c.arch, "num_classes": num_classes, "in_channels": in_channels,
            "dataset": c.dataset, **noise}

    def checkpoint(epoch: int, row: dict) -> dict:
        state = {
            "state_dict": {k: v.detach().cpu() for k, v in model.state_dict().items()},
            "epoch": epoch,
            "accuracy": 100.0 - row["test_err"],
            "acc": 100.0 - row["test_err"],
            **{k: row[k] for k in ("train_loss", "train_err", "test_loss", "test_err")},
            "optimizer": opt.state_dict(),
            "args": args,
            **meta,
        }
        if runner.scaler is not None:
            state["scaler"] = runner.scaler.state_dict()
        return state

    saved: list[str] = []
    if resume_ckpt is not None:
        model.load_state_dict(resume_ckpt["state_dict"])
        opt.load_state_dict(resume_ckpt["optimizer"])
        if runner.scaler is not None and "scaler" in resume_ckpt:
            runner.scaler.load_state_dict(resume_ckpt["scaler"])
        start = int(resume_ckpt["epoch"]) + 1
        history = _read_log(log_path, start - 1)
        _write_log(log_path, history)
        saved = [p for e, p in sorted(_checkpoints(out).items()) if e < start]
    else:
        t0 = time.perf_counter()
        train_loss, train_err = _evaluate(runner, (x_train, y_train), c.eval_batch_size)
        test_loss, test_err = _evaluate(runner, test_data, c.eval_batch_size)
        row = {"epoch": 0, "lr": lr_at(c, 1, milestones), "train_loss": train_loss,
               "train_err": train_err, "test_loss": test_loss, "test_err": test_err,
               "seconds": time.perf_counter() - t0}
        history = [row]
        _write_log(log_path, history)
        path = os.path.join(out, "model_0.pt")
        _save(path, checkpoint(0, row))
        saved.append(path)
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
            lr = lr_at(c, epoch, milestones)
            for group in opt.param_groups:
                group["lr"] = lr
            t0 = time.perf_counter()
            if bars is not None:
                bars[1].reset(total=steps)
                bars[1].set_description(f"epoch {epoch}")
            train_loss, train_err = _train_epoch(
                runner, opt, (x_train, y_train), epoch, pad_fill, bars[1] if bars else None
            )
            test_loss, test_err = _evaluate(runner, test_data, c.eval_batch_size)
            row = {"epoch": epoch, "lr": lr, "train_loss": train_loss, "train_err": train_err,
                   "test_loss": test_loss, "test_err": test_err,
                   "seconds": time.perf_counter() - t0}
            history.append(row)
            _write_log(log_path, history)
            state = checkpoint(epoch, row)
            if epoch % c.save_every == 0 or epoch == c.epochs:
                path = os.path.join(out, f"model_{epoch}.pt")
                _save(path, state)
                saved.append(path)
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
    if not history:
        raise LandscapeError(f"{out!r} has no epochs in its log.csv to resume from; use --overwrite "
                             "to train again")
    final = history[-1]
    return TrainResult(out, int(final["epoch"]), 100.0 - final["test_err"], history, saved,
                       model.cpu())


__all__ = [
    "TrainConfig", "TrainResult", "default_milestones", "default_out", "init_params",
    "lr_at", "train",
]
