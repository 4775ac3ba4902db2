"""What ``landscape-align`` does, file in -> file out: permute the units of checkpoint b to match
checkpoint a (:func:`landscape.connect.align`) and write b's aligned network as an ordinary
checkpoint, which records the permutation and where it came from.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass

from landscape import connect
from landscape.data.datasets import DataSpec
from landscape.errors import LandscapeError
from landscape.evaluation.options import EvalOptions
from landscape.io.checkpoint import read_checkpoint, save_checkpoint
from landscape.io.files import check_output
from landscape.jobs.network import network
from landscape.runtime.parallel import local_rank_and_size, on_root, world
from landscape.runtime.provenance import environment
from landscape.runtime.threads import choose_threads, using_threads


@dataclass(frozen=True)
class AlignConfig(DataSpec):
    """Aligning checkpoint ``b`` to checkpoint ``a`` (the fields of ``landscape-align``): the data
    (:class:`landscape.data.datasets.DataSpec`: the network's classes and input channels, the
    activations of ``method="activations"``, and the check that the aligned network computes what b
    does), the architecture, the method and its settings."""

    a: str = ""
    b: str = ""
    arch: str | None = None
    out: str = "aligned.pt"
    method: str = "weights"
    max_rounds: int = connect.MAX_ROUNDS
    seed: int = 0
    batch_size: int = 256
    device: str | None = "cpu"
    threads: int | None = None
    overwrite: bool = False
    unsafe_pickle: bool = False
    command: str = ""


# Entries of b's checkpoint that hold per-parameter state in b's order (or an earlier alignment).
UNORDERED = ("alignment", "optimizer", "optimizer_state_dict", "scheduler", "full_precision")


def _plain(value) -> bool:
    """A value a ``weights_only`` load reads and that does not depend on the units' order."""
    if value is None or isinstance(value, str | int | float | bool):
        return True
    if isinstance(value, list | tuple):
        return all(_plain(v) for v in value)
    if isinstance(value, Mapping):
        return all(isinstance(k, str) and _plain(v) for k, v in value.items())
    return False


def align_checkpoints(cfg: AlignConfig, comm=None) -> tuple[connect.Alignment, str]:
    """Align ``cfg.b`` to ``cfg.a`` and write the aligned checkpoint to ``cfg.out`` (never over an
    existing file unless ``overwrite``). It holds b's aligned ``state_dict``, b's own plain entries
    (its epoch, arguments, pruned widths, ...; not its optimizer state, whose order is b's), the
    architecture, and ``alignment``: the method, the permutation by group, the groups' layers, the
    rounds, the distances, both files with their SHA-256 and the environment. Returns the
    alignment and the path written (rank 0; other ranks get the alignment and ``""``)."""
    comm = comm or world()
    if not cfg.a or not cfg.b:
        raise LandscapeError("two checkpoints are needed: a (the reference) and b (the one permuted)")
    if not cfg.arch:
        raise LandscapeError("an architecture is needed (a zoo name or package.module:callable)")
    check_output(cfg.out, overwrite=cfg.overwrite)
    ckpt_a, ckpt_b = read_checkpoint(cfg.a, cfg.unsafe_pickle), read_checkpoint(cfg.b, cfg.unsafe_pickle)
    connect.check_distinct(ckpt_a, ckpt_b, f"A {cfg.a!r} and B {cfg.b!r}")
    spec = DataSpec.of(cfg)
    data, _ = spec.load(cfg.split)
    model_a = network(ckpt_a, cfg.arch, cfg.num_classes, data=data)
    model_b = network(ckpt_b, cfg.arch, cfg.num_classes, data=data)
    threads = choose_threads(cfg.threads, local_rank_and_size(comm)[1])  # the thread policy, once
    evaluation = EvalOptions(batch_size=cfg.batch_size, device=cfg.device, threads=threads)
    with using_threads(threads):
        result = connect.align(model_a, model_b, cfg.method, data, evaluation=evaluation, max_rounds=cfg.max_rounds,
                               seed=cfg.seed, comm=comm)
    in_channels = int(data.x.shape[1]) if data.x.dim() == 4 else 1
    record = {**result.record(), "reference": os.path.abspath(cfg.a), "reference_sha256": ckpt_a.sha256,
              "source": os.path.abspath(cfg.b), "source_sha256": ckpt_b.sha256,
              "command": cfg.command or "landscape.jobs.align.align_checkpoints",
              **{k: str(v) for k, v in environment().items()}}  # plain str: torch's version is a str subclass
    if cfg.method == "activations":
        record["data"] = spec.provenance()
    kept = {k: v for k, v in ckpt_b.meta.items() if k not in UNORDERED and _plain(v)}
    checkpoint = {**kept, "state_dict": {k: v.detach().cpu() for k, v in result.model.state_dict().items()},
                  "arch": cfg.arch, "num_classes": cfg.num_classes or data.num_classes or ckpt_b.num_classes,
                  "in_channels": in_channels, "alignment": record}

    def write() -> str:
        check_output(cfg.out, overwrite=cfg.overwrite)  # nothing appeared there meanwhile
        return save_checkpoint(cfg.out, checkpoint)

    path = on_root(comm, write)
    return result, path


__all__ = ["AlignConfig", "align_checkpoints"]
