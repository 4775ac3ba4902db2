"""Loss and accuracy of a network at its current parameters, over data held on the device.

The serial kernel of every surface: :class:`Evaluator` is built once per run (data moved to the
device and split into batches once, batch size picked by a timing probe) and then called once per
grid point after :class:`landscape.params.Mover` has moved the parameters in place.
"""

from __future__ import annotations

import ctypes
import sys
import time
from collections.abc import Sequence

import torch
import torch.nn.functional as F
from torch import nn

from landscape.data import Dataset
from landscape.errors import LandscapeError

LOSSES = ("crossentropy", "mse")
PRECISIONS = ("fp32", "bf16")
PROBE_BATCH_SIZES = (64, 128, 256, 512)


def keep_malloc_arenas() -> None:
    """Stop glibc from returning freed activations to the OS between batches.

    A fresh process otherwise runs the same forward pass up to 2x slower, paying page faults for
    every batch's activations (the effect of MALLOC_MMAP_THRESHOLD_/MALLOC_TRIM_THRESHOLD_).
    """
    if not sys.platform.startswith("linux"):
        return
    try:
        libc = ctypes.CDLL("libc.so.6")
        M_TRIM_THRESHOLD, M_MMAP_THRESHOLD = -1, -3
        libc.mallopt(M_MMAP_THRESHOLD, 1 << 30)
        libc.mallopt(M_TRIM_THRESHOLD, (1 << 31) - 1)
    except (OSError, AttributeError):
        pass


def resolve_device(device: str | None) -> torch.device:
    """``None``/``"auto"`` means CUDA when available; an unavailable device is a user error."""
    if device in (None, "auto"):
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    try:
        dev = torch.device(device)
    except RuntimeError:
        raise LandscapeError(f"--device {device!r} is not a device (cpu, cuda, cuda:1, auto)") from None
    if dev.type == "cuda" and not torch.cuda.is_available():
        raise LandscapeError(f"--device {device}: no CUDA GPU is available")
    if dev.type == "cuda" and dev.index is not None and dev.index >= torch.cuda.device_count():
        raise LandscapeError(f"--device {device}: only {torch.cuda.device_count()} GPU(s) visible")
    if dev.type == "mps" and not torch.backends.mps.is_available():
        raise LandscapeError(f"--device {device}: MPS is not available")
    return dev


def _has_conv(model: nn.Module) -> bool:
    return any(isinstance(m, nn.Conv2d) for m in model.modules())


class Evaluator:
    """Mean loss and accuracy (in %) of ``model`` on ``data``, as the parameters stand now.

    ``batch_size=None`` picks the fastest of a few sizes by timing them once. Conv nets run in
    channels-last memory format (exact, faster on CPU). ``precision="bf16"`` autocasts the forward
    pass (faster, but the loss moves by up to ~0.5%: opt-in). ``compile=True`` uses torch.compile.
    For ``loss="mse"`` with class labels, softmax outputs are compared with one-hot targets, as in
    the original tool and ``landscape-train``;
    with float targets it is a regression and the accuracy is NaN.
    """

    def __init__(
        self,
        model: nn.Module,
        data: Dataset,
        loss: str = "crossentropy",
        batch_size: int | None = None,
        device: str | torch.device | None = "cpu",
        precision: str = "fp32",
        compile: bool = False,
        channels_last: bool | None = None,
    ):
        if loss not in LOSSES:
            raise LandscapeError(f"loss must be one of {', '.join(LOSSES)}, got {loss!r}")
        if precision not in PRECISIONS:
            raise LandscapeError(f"precision must be one of {', '.join(PRECISIONS)}, got {precision!r}")
        if batch_size is not None and batch_size < 1:
            raise LandscapeError(f"batch size must be positive, got {batch_size}")
        keep_malloc_arenas()
        self.device = device if isinstance(device, torch.device) else resolve_device(device)
        self.loss_name = loss
        self.precision = precision
        self.num_classes = data.num_classes
        if channels_last is None:
            channels_last = data.x.dim() == 4 and _has_conv(model)
        self.channels_last = channels_last
        fmt = torch.channels_last if channels_last else torch.contiguous_format
        model.to(self.device)
        if channels_last:
            model.to(memory_format=torch.channels_last)
        model.eval()
        self.model = model
        self.forward = torch.compile(model) if compile else model
        self.x = data.x.to(self.device).contiguous(memory_format=fmt) if channels_last else data.x.to(self.device)
        self.y = data.y.to(self.device)
        self.classification = not self.y.is_floating_point()
        if loss == "crossentropy" and not self.classification:
            raise LandscapeError("the dataset has float (regression) targets: use --loss mse")
        self.n = len(self.y)
        if self.n == 0:
            raise LandscapeError("the evaluation data is empty")
        self._check_fits()
        self.batch_size = batch_size or self.probe_batch_size()
        self.batches = list(zip(self.x.split(self.batch_size), self.y.split(self.batch_size), strict=True))

    def _logits(self, xb: torch.Tensor) -> torch.Tensor:
        if self.precision == "bf16":
            with torch.autocast(self.device.type, dtype=torch.bfloat16):
                return self.forward(xb).float()
        return self.forward(xb)

    def _batch_sums(self, xb: torch.Tensor, yb: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        out = self._logits(xb)
        if self.loss_name == "crossentropy":
            loss = F.cross_entropy(out, yb, reduction="sum")
        else:
            if self.classification:  # softmax outputs against one-hot targets, as the original tool
                pred, target = F.softmax(out, 1), F.one_hot(yb, out.shape[1]).to(out.dtype)
            else:
                pred, target = out, yb.view_as(out)
            loss = F.mse_loss(pred, target, reduction="sum") / (out[0].numel() if out.dim() > 1 else 1)
        if self.classification:
            correct = (out.argmax(1) == yb).sum()
        else:
            correct = torch.zeros((), device=out.device)
        return loss, correct

    @torch.inference_mode()
    def probe_batch_size(self, candidates: Sequence[int] = PROBE_BATCH_SIZES, rounds: int = 2) -> int:
        """The candidate with the least time per sample over the first ~1,024 samples.

        Candidates are timed in interleaved rounds and each keeps its best round, so a burst of
        load from another process does not decide the choice.
        """
        sizes = sorted({min(b, self.n) for b in candidates})
        if len(sizes) == 1:
            return sizes[0]
        span = min(self.n, max(1024, max(sizes)))
        best_rate = dict.fromkeys(sizes, float("inf"))
        for b in sizes:
            self._batch_sums(self.x[:b], self.y[:b])  # warm-up: allocator and kernels
        for _ in range(rounds):
            for b in sizes:
                reps = max(1, span // b)
                self._sync()
                t0 = time.perf_counter()
                for r in range(reps):
                    lo = (r * b) % max(1, self.n - b + 1)
                    self._batch_sums(self.x[lo:lo + b], self.y[lo:lo + b])
                self._sync()
                best_rate[b] = min(best_rate[b], (time.perf_counter() - t0) / (reps * b))
        return min(sizes, key=best_rate.__getitem__)

    @torch.inference_mode()
    def _check_fits(self) -> None:
        """One forward pass on two samples: a model that does not take this data is a user error."""
        try:
            out = self.model(self.x[:2])  # eager, so a compiled model is compiled for real batches
        except (RuntimeError, ValueError, IndexError) as exc:
            first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
            raise LandscapeError(f"the model does not accept inputs of shape {tuple(self.x.shape[1:])} "
                                 f"({first})") from None
        if self.classification and (out.dim() != 2 or out.shape[1] < int(self.y.max()) + 1):
            raise LandscapeError(f"the model outputs shape {tuple(out.shape[1:])} but the labels go up "
                                 f"to {int(self.y.max())}")

    def _sync(self) -> None:
        if self.device.type == "cuda":
            torch.cuda.synchronize(self.device)

    @torch.inference_mode()
    def __call__(self) -> tuple[float, float]:
        """(mean loss, accuracy in percent) at the model's current parameters."""
        total_loss = torch.zeros((), dtype=torch.float64, device=self.device)
        total_correct = torch.zeros((), dtype=torch.float64, device=self.device)
        for xb, yb in self.batches:
            loss, correct = self._batch_sums(xb, yb)
            total_loss += loss.double()
            total_correct += correct.double()
        loss = float(total_loss) / self.n
        # argmax of NaN logits is class 0: an accuracy there would be an artefact, not a result
        valid = self.classification and loss == loss
        acc = 100.0 * float(total_correct) / self.n if valid else float("nan")
        return loss, acc
