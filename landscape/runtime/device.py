"""Which torch device a run uses: ``None``/``"auto"`` is CUDA when available; a device that is not
here is a user error in one line."""

from __future__ import annotations

import torch

from landscape.errors import LandscapeError


def resolve_device(device: str | torch.device | None) -> torch.device:
    """``None``/``"auto"`` means CUDA when available; an unavailable device is a user error."""
    if isinstance(device, torch.device):
        return device
    if device in (None, "auto"):
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    try:
        dev = torch.device(device)
    except RuntimeError:
        raise LandscapeError(f"device {device!r} is not a device (cpu, cuda, cuda:1, auto)") from None
    if dev.type == "cuda" and not torch.cuda.is_available():
        raise LandscapeError(f"device {device}: no CUDA GPU is available")
    if dev.type == "cuda" and dev.index is not None and dev.index >= torch.cuda.device_count():
        raise LandscapeError(f"device {device}: only {torch.cuda.device_count()} GPU(s) visible")
    if dev.type == "mps" and not torch.backends.mps.is_available():
        raise LandscapeError(f"device {device}: MPS is not available")
    return dev
