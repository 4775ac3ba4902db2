"""``landscape-lowrank``'s job: a checkpoint factorized by truncated SVD into a smaller checkpoint
that records its ranks (:mod:`landscape.lowrank`), with its FLOPs and parameters."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from landscape.errors import LandscapeError
from landscape.io.checkpoint import read_checkpoint
from landscape.io.files import owned_output
from landscape.jobs.network import network
from landscape.jobs.prune import default_input_shape, io_of
from landscape.lowrank import check_ratio, factorize, lowrank_of, save_factorized


@dataclass(frozen=True)
class LowRankReport:
    """What :func:`factorize_checkpoint` wrote: the file, every layer's rank, the layers kept whole,
    and FLOPs and parameters before and after (the pruning paper's convention)."""

    out: str
    ranks: dict
    kept: tuple[str, ...]
    flops: int
    params: int
    flops_original: int
    params_original: int


def factorize_checkpoint(path: str, arch: str, out: str, rank_ratio: float | None = None,
                         energy: float | None = None, input_shape: Sequence[int] | None = None,
                         num_classes: int | None = None, in_channels: int | None = None, unsafe_pickle: bool = False,
                         overwrite: bool = False) -> LowRankReport:
    """Factorize the network of the checkpoint at ``path`` (read once, safely) at ``rank_ratio``
    (or keeping ``energy`` of each layer's squared singular values) and write it to ``out``."""
    check_ratio(rank_ratio, energy)  # before anything is read
    with owned_output(out, overwrite=overwrite) as (out,):
        ckpt = read_checkpoint(path, unsafe_pickle)
        if lowrank_of(ckpt.meta):
            raise LandscapeError(f"{path!r} is factorized already: factorize the original network instead")
        model = network(ckpt, arch, num_classes, in_channels).eval()
        small = factorize(model, rank_ratio=rank_ratio, energy=energy)
        nc, ic = io_of(model)
        recorded = ckpt.meta.get("prune", {}).get("input_shape") if isinstance(ckpt.meta.get("prune"), dict) else None
        shape = tuple(int(d) for d in (input_shape or recorded or default_input_shape(arch, ic)))
        extra = {k: ckpt.meta[k] for k in ("widths", "dataset") if ckpt.meta.get(k)}
        saved = save_factorized(out, small, original=model, arch=arch, input_shape=shape, num_classes=nc,
                                in_channels=ic, rank_ratio=rank_ratio, energy=energy, source=path,
                                source_sha256=ckpt.sha256, extra=extra)
    entry = saved["lowrank"]
    return LowRankReport(out, dict(entry["ranks"]), tuple(entry["kept"]), entry["flops"], entry["params"],
                         entry["flops_original"], entry["params_original"])


__all__ = ["LowRankReport", "factorize_checkpoint"]
