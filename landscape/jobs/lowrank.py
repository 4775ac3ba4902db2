"""``landscape-lowrank``'s job: a checkpoint factorized by truncated SVD into a smaller checkpoint
that records its ranks (:mod:`landscape.lowrank`), with its FLOPs and parameters."""

from __future__ import annotations

from dataclasses import dataclass

from landscape.errors import LandscapeError
from landscape.io.files import owned_output
from landscape.jobs.network import ModelSpec
from landscape.jobs.prune import default_input_shape, io_of
from landscape.lowrank import check_ratio, factorize, lowrank_of, save_factorized
from landscape.runtime.threads import choose_threads, using_threads


@dataclass(frozen=True)
class LowRankConfig:
    """``landscape-lowrank``: the checkpoint's network (``model``), factorized at ``rank_ratio``
    (or keeping the share ``energy`` of each layer's squared singular values: one of the two, in
    (0, 1]) into the checkpoint ``out`` (never over an existing file unless ``overwrite``); FLOPs
    counted on one sample of ``input_shape`` (None: what a pruned source records, else the zoo's);
    ``threads``: torch's threads for the SVDs (None: the thread policy's count)."""

    model: ModelSpec
    out: str
    rank_ratio: float | None = None
    energy: float | None = None
    input_shape: tuple[int, ...] | None = None
    overwrite: bool = False
    threads: int | None = None

    def __post_init__(self):
        if not isinstance(self.model, ModelSpec):
            raise LandscapeError(f"`model` must be a ModelSpec, got {self.model!r}")
        check_ratio(self.rank_ratio, self.energy)


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


def factorize_checkpoint(cfg: LowRankConfig) -> LowRankReport:
    """Factorize the network of ``cfg.model``'s checkpoint (read once, safely) and write it to ``cfg.out``."""
    threads = choose_threads(cfg.threads)  # the thread policy, once (a count beyond the cores refused first)
    with owned_output(cfg.out, overwrite=cfg.overwrite) as (out,), using_threads(threads):
        ckpt = cfg.model.read()
        if lowrank_of(ckpt.meta):
            raise LandscapeError(f"{ckpt.path!r} is factorized already: factorize the original network instead")
        model = cfg.model.build(ckpt).eval()
        small = factorize(model, rank_ratio=cfg.rank_ratio, energy=cfg.energy)
        nc, ic = io_of(model)
        recorded = ckpt.meta.get("prune", {}).get("input_shape") if isinstance(ckpt.meta.get("prune"), dict) else None
        arch = cfg.model.need_arch()
        shape = tuple(int(d) for d in (cfg.input_shape or recorded or default_input_shape(arch, ic)))
        extra = {k: ckpt.meta[k] for k in ("widths", "dataset") if ckpt.meta.get(k)}
        saved = save_factorized(out, small, original=model, arch=arch, input_shape=shape, num_classes=nc,
                                in_channels=ic, rank_ratio=cfg.rank_ratio, energy=cfg.energy, source=ckpt.path,
                                source_sha256=ckpt.sha256, extra=extra)
    entry = saved["lowrank"]
    return LowRankReport(out, dict(entry["ranks"]), tuple(entry["kept"]), entry["flops"], entry["params"],
                         entry["flops_original"], entry["params_original"])


__all__ = ["LowRankConfig", "LowRankReport", "factorize_checkpoint"]
