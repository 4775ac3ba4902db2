"""The training loop: a model, data, an optimizer (and its learning-rate schedule), hooks.

    loop = Loop(model, (X, y), torch.optim.SGD(model.parameters(), lr=0.1, momentum=0.9),
                schedule=Milestones(0.1, 0.1, [30]), test_data=(X_test, y_test),
                config=LoopConfig(epochs=40, batch_size=128))
    history = loop.run()            # one log row per epoch (epoch 0: before training)

The loop knows :class:`~landscape.training.hooks.TrainHook` and nothing that implements it:
quantized training is ``hooks=[quantize_(model, QuantConfig(...))]``; a pruned network is just a
model. Every step hands the optimizer torch's closure (``optimizer.step(closure)``: zero the
gradients, forward, backward, the hooks' ``after_backward``, return the loss), so an optimizer
that evaluates the loss more than once per step (sharpness-aware minimization, ``LBFGS``) needs
nothing of the loop; BatchNorm running statistics are updated by the first evaluation of a step
only. ``objective`` is what the steps minimize when it is not ``loss`` (distillation).

With a :class:`~landscape.training.run_folder.RunFolder` (``folder=``) it writes ``model_0.pt``,
``model_E.pt`` every ``save_every`` epochs and at the end, ``resume.pt`` after the other epochs
and ``log.csv``, and continues a run from its newest checkpoint, bit for bit on the CPU.

Data: ``(X, y)`` tensors (or a :class:`landscape.Dataset`) are held on the device when they fit
and cut into batches by indexing, reshuffled every epoch by a generator seeded with
``(seed, epoch)``, optionally passed through ``transform(x, generator)`` (augmentation); any other
re-iterable of ``(x, y)`` batches (a ``DataLoader``, a list) is read as it comes at every epoch.
Running sums stay on the device, so the loop never waits for it before the end of an epoch.
"""

from __future__ import annotations

import contextlib
import inspect
import math
import sys
import time
import warnings
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass

import torch
from torch import nn

from landscape.data.batches import tensors_of, to_device
from landscape.errors import LandscapeError
from landscape.evaluation.evaluator import evaluate
from landscape.evaluation.losses import LossFn, accuracy, resolve_loss
from landscape.runtime.progress import progress_bar
from landscape.training.hooks import TrainHook, hook_key
from landscape.training.run_folder import RunFolder

Transform = Callable[[torch.Tensor, torch.Generator], torch.Tensor]


@dataclass(frozen=True)
class LoopConfig:
    """How the loop runs: epochs, batch sizes, the shuffling seed, when to keep a checkpoint,
    mixed precision (float16 + gradient scaling on CUDA, bfloat16 on CPU), memory format, bars."""

    epochs: int = 1
    batch_size: int = 128
    eval_batch_size: int = 1024
    seed: int = 0
    save_every: int = 1
    amp: bool = False
    channels_last: bool = False
    progress: bool = False

    def __post_init__(self):
        for name in ("epochs", "batch_size", "eval_batch_size", "save_every"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value <= 0:
                raise LandscapeError(f"`{name}` must be a positive integer, got {value!r}")
        if isinstance(self.seed, bool) or not isinstance(self.seed, int) or self.seed < 0:
            raise LandscapeError(f"`seed` must be a non-negative integer, got {self.seed!r}")


def _on_device(x: torch.Tensor, device: torch.device) -> torch.Tensor:
    """Move a whole split to the device when it takes under a quarter of the free memory."""
    if device.type != "cuda":
        return x.to(device)
    free, _ = torch.cuda.mem_get_info(device)
    if x.numel() * x.element_size() < free // 4:
        return x.to(device)
    return x.pin_memory()


def _xy(data, device: torch.device, what: str):
    """``(x, y)`` tensors for in-memory data (on the device when they fit), else the re-iterable."""
    if data is None:
        return None
    tensors = tensors_of(data)
    if tensors is not None:
        if len(tensors) != 2:
            raise LandscapeError(f"{what} must be (X, y) tensors, got {len(tensors)} tensors")
        if len(tensors[1]) == 0:
            raise LandscapeError(f"{what} is empty")
        x = _on_device(tensors[0], device)
        return x, tensors[1].to(x.device)
    if not isinstance(data, Iterable) or isinstance(data, str | bytes | Mapping) or iter(data) is data:
        raise LandscapeError(f"{what} must be (X, y) tensors, a Dataset or a re-iterable of (x, y) batches "
                             f"(a DataLoader, a list), got {type(data).__name__}")
    return list(data) if isinstance(data, tuple) else data  # a tuple of the loop's own means (X, y)


def _takes_closure(optimizer: torch.optim.Optimizer) -> bool:
    """Whether ``optimizer.step`` takes torch's closure (every torch optimizer does; a user's may not)."""
    try:
        return bool(inspect.signature(optimizer.step).parameters)
    except (TypeError, ValueError):
        return True


class Loop:
    """One training run of ``model`` on ``data`` with ``optimizer`` (see the module docstring).

    - ``schedule(epoch) -> lr`` sets every parameter group's rate at the start of each (1-based)
      epoch (e.g. :class:`~landscape.training.optim.Milestones`); None leaves the rate alone.
    - ``loss``: ``"crossentropy"``, ``"mse"`` or ``loss_fn(output, batch)``; the error column is
      the share of argmax predictions that miss the label.
    - ``objective``: what the training steps minimize, when it is not ``loss`` (e.g.
      :class:`~landscape.training.distill.Distillation`'s loss); the log's ``train_loss`` of a
      trained epoch is its mean, every evaluation (epoch 0, the test data) uses ``loss``.
    - ``test_data``: evaluated after every epoch (columns ``test_loss``, ``test_err``).
    - ``transform(x, generator)``: applied to each training batch of in-memory data.
    - ``folder``: a :class:`RunFolder` to write checkpoints and the log to, and resume from;
      ``record``: entries written into every checkpoint besides the loop's own.
    - ``net``: what runs the forward pass, when it wraps ``model`` (``nn.DataParallel(model)``).

    What hooks may read: ``model``, ``optimizer``, ``config``, ``epoch``, ``step`` (optimizer steps
    so far), ``hooks``, ``resumed``, ``folder``, ``device``.
    """

    def __init__(
        self,
        model: nn.Module,
        data,
        optimizer: torch.optim.Optimizer,
        *,
        schedule: Callable[[int], float] | None = None,
        hooks: Sequence[TrainHook] = (),
        config: LoopConfig | None = None,
        test_data=None,
        loss: str | LossFn = "crossentropy",
        objective: str | LossFn | None = None,
        transform: Transform | None = None,
        folder: RunFolder | None = None,
        record: Mapping | None = None,
        net: nn.Module | None = None,
    ):
        self.model = model
        self.net = model if net is None else net
        self.optimizer = optimizer
        self.schedule = schedule
        self.hooks: list[TrainHook] = list(hooks)
        self.config = c = config or LoopConfig()
        self.device = next((p.device for p in model.parameters()), torch.device("cpu"))
        if data is None:
            raise LandscapeError("the training data is missing")
        self.train_data = _xy(data, self.device, "the training data")
        self.test_data = _xy(test_data, self.device, "the test data")
        self.loss_name, self.loss_fn = resolve_loss(loss)
        self.objective = self.loss_fn if objective is None else resolve_loss(objective)[1]
        self._takes_closure = _takes_closure(optimizer)
        self._norms = [m for m in self.net.modules()
                       if isinstance(m, nn.modules.batchnorm._BatchNorm) and m.track_running_stats]
        self.transform = transform
        self.folder = folder
        self.record = dict(record or {})
        self.memory_format = torch.channels_last if c.channels_last else torch.contiguous_format
        self.amp_dtype = (torch.float16 if self.device.type == "cuda" else torch.bfloat16) if c.amp else None
        self.scaler = torch.amp.GradScaler("cuda") if c.amp and self.device.type == "cuda" else None
        self.resumed = folder is not None and folder.resume_state is not None
        self.epoch, self.step = 0, 0
        self.history: list[dict] = []
        self.saved: list[str] = []

    # -- pieces ------------------------------------------------------------------------------

    def prep(self, x: torch.Tensor) -> torch.Tensor:
        """``x`` on the device, in the loop's memory format."""
        x = x.to(self.device, non_blocking=True)
        return x.contiguous(memory_format=self.memory_format) if x.ndim == 4 else x

    def _forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.amp_dtype is None:
            return self.net(x)
        with torch.autocast(self.device.type, dtype=self.amp_dtype):
            return self.net(x)

    def lr(self) -> float:
        """The learning rate of the current epoch (the first parameter group's)."""
        if self.schedule is not None:
            return float(self.schedule(max(self.epoch, 1)))
        return float(self.optimizer.param_groups[0]["lr"])

    def train_step(self, batch: tuple[torch.Tensor, torch.Tensor]) -> tuple[torch.Tensor, torch.Tensor]:
        """One optimizer step on ``batch`` (on the device) with every hook; returns the loss and
        the output (detached) of the step's first evaluation, at the weights it started from."""
        for h in self.hooks:
            h.before_forward(self, batch)
        first: list[tuple[torch.Tensor, torch.Tensor]] = []

        def closure() -> torch.Tensor:
            self.optimizer.zero_grad(set_to_none=True)
            with self._statistics_kept() if first else contextlib.nullcontext():
                out = self._forward(batch[0]).float()
                loss = self.objective(out, batch)
                if self.scaler is not None:
                    self.scaler.scale(loss).backward()
                else:
                    loss.backward()
            for h in self.hooks:
                h.after_backward(self)
            if not first:
                first.append((loss.detach(), out.detach()))
            return loss

        if self.scaler is not None:  # GradScaler.step takes no closure
            closure()
            self.scaler.step(self.optimizer)
            self.scaler.update()
        elif self._takes_closure:
            self.optimizer.step(closure)
        else:
            closure()
            self.optimizer.step()
        if not first:
            name = type(self.optimizer).__name__
            raise LandscapeError(f"the optimizer's step(closure) never called the closure ({name}): an optimizer must "
                                 "evaluate the loss through it, as torch's optimizers do")
        self.step += 1
        for h in self.hooks:
            h.after_step(self)
        return first[0]

    @contextlib.contextmanager
    def _statistics_kept(self):
        """BatchNorm in training mode without updating its running statistics (a step's later evaluations)."""
        for m in self._norms:
            m.track_running_stats = False
        try:
            yield
        finally:
            for m in self._norms:
                m.track_running_stats = True

    def _train_batches(self) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
        c, data = self.config, self.train_data
        seed = c.seed * 1_000_003 + self.epoch
        torch.manual_seed(seed)  # for any dropout: a function of the epoch
        if not isinstance(data, tuple):
            for batch in data:
                yield tuple(to_device(batch, self.device, c.channels_last))
            return
        x, y = data
        gen_device = x.device if x.device.type == "cuda" else torch.device("cpu")
        gen = torch.Generator(device=gen_device).manual_seed(seed)
        perm = torch.randperm(len(y), generator=gen, device=gen_device).to(x.device)
        for i in range(0, len(y), c.batch_size):
            idx = perm[i:i + c.batch_size]
            if len(idx) < 2 and i > 0:  # BatchNorm cannot train on a batch of one sample
                break
            xb = x[idx]
            if self.transform is not None:  # where the data lives, with the generator that lives there too
                xb = self.transform(xb, gen)
            yield self.prep(xb), y[idx].to(self.device, non_blocking=True)

    def steps_per_epoch(self) -> int | None:
        """Optimizer steps in one epoch (None for a loader without a length)."""
        if isinstance(self.train_data, tuple):
            return math.ceil(len(self.train_data[1]) / self.config.batch_size)
        return len(self.train_data) if hasattr(self.train_data, "__len__") else None

    def train_epoch(self, bar=None) -> tuple[float, float]:
        """One pass over the training data (epoch :attr:`epoch`); mean loss and error (%)."""
        self.net.train()
        loss_sum = torch.zeros((), device=self.device)
        wrong = torch.zeros((), device=self.device, dtype=torch.long)
        seen = 0
        for batch in self._train_batches():
            loss, out = self.train_step(batch)
            n = len(batch[1])
            loss_sum += loss * n
            if not batch[1].is_floating_point():
                wrong += (out.argmax(1) != batch[1]).sum()
            seen += n
            if bar is not None:
                bar.update(1)
        if seen == 0:
            raise LandscapeError("the training data is empty")
        return loss_sum.item() / seen, 100.0 * wrong.item() / seen

    def evaluate(self, data) -> tuple[float, float]:
        """Mean loss and error (%) of the model in eval mode on ``data`` (as the loop holds it)."""
        b = self.config.eval_batch_size

        def batches():
            if isinstance(data, tuple):
                x, y = data
                for i in range(0, len(y), b):
                    yield (self.prep(x[i:i + b]), y[i:i + b].to(self.device, non_blocking=True)), len(y[i:i + b])
            else:
                for batch in data:
                    batch = tuple(to_device(batch, self.device, self.config.channels_last))
                    yield batch, len(batch[1])

        self.net.eval()
        values = evaluate(self.net, batches(), self.loss_fn, accuracy, autocast_dtype=self.amp_dtype)
        return values["loss"], 100.0 - values["acc"]

    def _row(self, epoch: int, lr: float, train: tuple[float, float], t0: float) -> dict:
        row = {"epoch": epoch, "lr": lr, "train_loss": train[0], "train_err": train[1]}
        if self.test_data is not None:
            row["test_loss"], row["test_err"] = self.evaluate(self.test_data)
        row["seconds"] = time.perf_counter() - t0
        for h in self.hooks:
            h.on_epoch_end(self, epoch, row)
        return row

    # -- checkpoints ---------------------------------------------------------------------------

    def state(self, epoch: int, row: dict) -> dict:
        """The checkpoint dict of the run as it stands after ``epoch`` (``row``: its log line)."""
        state = {
            "state_dict": {k: v.detach().cpu() for k, v in self.model.state_dict().items()},
            "epoch": epoch,
            **{k: row[k] for k in ("train_loss", "train_err", "test_loss", "test_err") if k in row},
            "optimizer": self.optimizer.state_dict(),
            "step": self.step,
            "threads": torch.get_num_threads(),
            **self.record,
            "hooks": {hook_key(k, h): h.state_dict() for k, h in enumerate(self.hooks)},
            "hook_config": {hook_key(k, h): h.config() for k, h in enumerate(self.hooks)},
        }
        if "test_err" in row:
            state["accuracy"] = state["acc"] = 100.0 - row["test_err"]  # "acc": the original tool's key
        if self.scaler is not None:
            state["scaler"] = self.scaler.state_dict()
        for h in self.hooks:
            h.on_checkpoint(self, state)
        return state

    def load_state(self, state: dict) -> int:
        """Continue from a checkpoint dict of :meth:`state`; returns the next epoch."""
        where = self.folder.path if self.folder is not None else "the run"
        saved, settings = state.get("hooks", {}), state.get("hook_config", {})
        for k, h in enumerate(self.hooks):
            key = hook_key(k, h)
            if key not in saved:
                raise LandscapeError(f"cannot resume {where!r}: its checkpoints were written without the "
                                     f"training hook {h.name!r}")
            if key in settings and settings[key] != h.config():
                mine = h.config()
                shown = ", ".join(f"{n} {v!r} -> {mine.get(n)!r}" for n, v in settings[key].items()
                                  if mine.get(n) != v)
                raise LandscapeError(f"cannot resume {where!r} with different settings of hook {h.name!r}: {shown}")
        self.model.load_state_dict(state["state_dict"])
        self.optimizer.load_state_dict(state["optimizer"])
        if self.scaler is not None and "scaler" in state:
            self.scaler.load_state_dict(state["scaler"])
        for k, h in enumerate(self.hooks):
            h.load_state_dict(saved[hook_key(k, h)])
        self.step = int(state.get("step", 0))
        self.epoch = int(state["epoch"])
        saved_threads, threads = state.get("threads"), torch.get_num_threads()
        if self.device.type == "cpu" and saved_threads is not None and saved_threads != threads:
            warnings.warn(f"{where!r} was trained with {saved_threads} torch thread(s) and resumes with {threads}: "
                          "the run continues, but not bit for bit (torch splits its sums by thread count)",
                          stacklevel=2)
        return self.epoch + 1

    def _save(self, epoch: int, row: dict, keep: bool) -> None:
        if self.folder is None:
            return
        path = self.folder.save(epoch, self.state(epoch, row), keep)
        if keep:
            self.saved.append(path)

    # -- the run -------------------------------------------------------------------------------

    def run(self, on_epoch_end: Callable[[int, dict], None] | None = None) -> list[dict]:
        """Train (or continue) to ``config.epochs``; returns the log rows, epoch 0 first.

        ``on_epoch_end(epoch, row)`` is called after each epoch's checkpoint is written; raising
        in it stops the run as an interruption would (resumable from the run folder)."""
        c, folder = self.config, self.folder
        start = 1
        if folder is not None:
            folder.begin()
            if folder.resume_state is not None:
                start = self.load_state(folder.resume_state)
                self.history = folder.read_log(start - 1)
                folder.write_log(self.history)
                self.saved = [p for e, p in sorted(folder.checkpoints().items()) if e < start]
        for h in self.hooks:
            h.on_start(self)
        if not self.resumed:
            self.epoch = 0
            t0 = time.perf_counter()
            lr = float(self.schedule(1)) if self.schedule is not None else self.lr()
            train = self.evaluate(self.train_data)
            row = self._row(0, lr, train, t0)
            self.history = [row]
            if folder is not None:
                folder.write_log(self.history)
            self._save(0, row, keep=True)
        bars = self._bars(start)
        try:
            for epoch in range(start, c.epochs + 1):
                self.epoch = epoch
                lr = self.lr()
                if self.schedule is not None:
                    for group in self.optimizer.param_groups:
                        group["lr"] = lr
                t0 = time.perf_counter()
                if bars is not None:
                    bars[1].reset(total=self.steps_per_epoch())
                    bars[1].set_description(f"epoch {epoch}")
                train = self.train_epoch(bars[1] if bars else None)
                if not math.isfinite(train[0]):
                    kept = max(folder.checkpoints(), default=0) if folder is not None else 0
                    where = f" in {folder.path!r}" if folder is not None else ""
                    raise LandscapeError(
                        f"training diverged in epoch {epoch}: the training loss is {train[0]} (learning "
                        f"rate {lr:g} too high?); stopped, the checkpoints up to epoch {max(kept, epoch - 1)}"
                        f"{where} are kept")
                row = self._row(epoch, lr, train, t0)
                self.history.append(row)
                if folder is not None:
                    folder.write_log(self.history)
                self._save(epoch, row, keep=epoch % c.save_every == 0 or epoch == c.epochs)
                if bars is not None:
                    bars[0].update(1)
                    test = f" test loss {row['test_loss']:.4f} err {row['test_err']:.2f}%" if "test_err" in row else ""
                    bars[0].write(f"epoch {epoch}/{c.epochs} lr {lr:.4g} train loss {train[0]:.4f} "
                                  f"err {train[1]:.2f}%{test} ({row['seconds']:.1f} s)", file=sys.stdout)
                if on_epoch_end is not None:
                    on_epoch_end(epoch, row)
        finally:
            if bars is not None:
                bars[1].close()
                bars[0].close()
        if folder is not None:
            folder.finish()
        if not self.history:
            where = f"{folder.path!r} has" if folder is not None else "the run has"
            raise LandscapeError(f"{where} no epochs in its log.csv to resume from; use `overwrite` to train again")
        return self.history

    def _bars(self, start: int):
        c = self.config
        if not c.progress or start > c.epochs:
            return None

        # on a terminal: bars; in a log: a line every few seconds; the per-epoch lines either way.
        outer = progress_bar(total=c.epochs, initial=start - 1, desc="epochs", unit="epoch")
        inner = progress_bar(total=self.steps_per_epoch(), desc=f"epoch {start}", unit="step", leave=False)
        return outer, inner


__all__ = ["Loop", "LoopConfig", "Transform"]
