"""The built-in demo: a small conv net trained on scikit-learn's digits in seconds, cached."""

from __future__ import annotations

import os
import time

import torch
import torch.nn.functional as F

from landscape.data.datasets import load_dataset
from landscape.errors import LandscapeError
from landscape.io.checkpoint import save_checkpoint
from landscape.models import build_model
from landscape.runtime.cache import cache_dir
from landscape.runtime.threads import choose_threads, using_threads

DEMO_ARCH = "digits_cnn"
DEMO_DATASET = "digits"
DEMO_EPOCHS = 15


def demo_checkpoint(seed: int = 0, verbose: bool = True, threads: int | None = None) -> str:
    """Path of the demo network's state dict, training it first if it is not cached, with
    ``threads`` torch threads (None: :mod:`landscape.runtime.threads`' policy, the idle cores)."""
    path = os.path.join(cache_dir(), f"{DEMO_ARCH}_{DEMO_DATASET}_seed{seed}.pt")
    if os.path.isfile(path):
        if verbose:
            print(f"built-in demo: using the cached {DEMO_ARCH} trained on {DEMO_DATASET}: {path}")
        return path
    try:
        os.makedirs(os.path.dirname(path), exist_ok=True)
    except OSError as exc:
        raise LandscapeError(f"cannot create the cache folder {os.path.dirname(path)!r} "
                             f"({exc.strerror or exc}); set LANDSCAPE_CACHE to a writable folder") from None
    with using_threads(choose_threads(threads)):
        model, acc, seconds = _train_demo(seed)
    save_checkpoint(path, {"state_dict": model.state_dict(), "epoch": DEMO_EPOCHS, "accuracy": acc})
    if verbose:
        print(f"built-in demo: trained {DEMO_ARCH} on {DEMO_DATASET} in {seconds:.1f} s "
              f"(test accuracy {acc:.1f}%), cached at {path}")
    return path


def fit(model: torch.nn.Module, data, seed: int = 0, epochs: int = DEMO_EPOCHS) -> torch.nn.Module:
    """The demo's training: Adam at 3e-3, batches of 64 in an order drawn from ``seed``, ``epochs``
    passes over ``data`` (``.x``, ``.y``); returns ``model`` in eval mode."""
    opt = torch.optim.Adam(model.parameters(), lr=3e-3)
    g = torch.Generator().manual_seed(seed)
    model.train()
    for _ in range(epochs):
        for idx in torch.randperm(len(data), generator=g).split(64):
            opt.zero_grad(set_to_none=True)
            F.cross_entropy(model(data.x[idx]), data.y[idx]).backward()
            opt.step()
    return model.eval()


def _train_demo(seed: int) -> tuple[torch.nn.Module, float, float]:
    t0 = time.perf_counter()
    torch.manual_seed(seed)
    train, test = load_dataset(DEMO_DATASET, split="train"), load_dataset(DEMO_DATASET, split="test")
    model = fit(build_model(DEMO_ARCH, num_classes=10, in_channels=1), train, seed)
    with torch.inference_mode():
        acc = (model(test.x).argmax(1) == test.y).float().mean().item() * 100
    return model, acc, time.perf_counter() - t0
