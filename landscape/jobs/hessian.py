"""``landscape-hessian``'s job: the Hessian summary of a checkpoint, its file and its density plot.

``summarize_checkpoint(HessianConfig(model="ckpt.pt", arch="resnet20", top_k=5, trace=True))``
reads the checkpoint once, builds its network for the data, runs
:func:`landscape.hessian.summarize`, writes the summary file (with provenance, checksums and the
inputs it was computed from) and, with ``density``, draws the spectral density. The same command
run again after the summary was written (killed before the figure, or the disk full) keeps the
summary, whose recorded inputs match, and draws what is missing.
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable
from dataclasses import dataclass, field, fields

from landscape.data.batches import data_checksum
from landscape.data.datasets import DataSpec
from landscape.errors import LandscapeError, OutputExists, one_line
from landscape.hessian.summary import HessianSummary, SummaryOptions, read_summary, summarize, write_summary
from landscape.io.checkpoint import read_checkpoint
from landscape.io.files import owned_output, replacing
from landscape.jobs.network import network
from landscape.runtime.device import resolve_device
from landscape.runtime.provenance import environment
from landscape.runtime.threads import choose_threads, using_threads


@dataclass(frozen=True)
class HessianConfig(DataSpec):
    """What ``landscape-hessian`` computes: a checkpoint, its data (the :class:`DataSpec` fields),
    the loss and what to compute (``options``, a :class:`SummaryOptions`), where it runs, where it
    is written and whether it shows its ``progress``; :func:`summarize_checkpoint` runs it."""

    model: str = ""
    arch: str = ""
    unsafe_pickle: bool = False
    loss: str = "crossentropy"
    options: SummaryOptions = field(default_factory=SummaryOptions)
    device: str = "cpu"
    threads: int | None = None
    out: str = "hessian.h5"
    png: str | None = None
    save_vectors: bool = False
    overwrite: bool = False
    progress: bool = False

    def png_path(self) -> str:
        """Where the density plot goes: ``png``, or ``out`` with ``.png``."""
        return self.png or os.path.splitext(self.out)[0] + ".png"


def summarize_checkpoint(cfg: HessianConfig, command: str = "",
                         log: Callable[[str], None] | None = None) -> tuple[HessianSummary, list[str]]:
    """Load ``cfg.model`` and its data, :func:`summarize` it, write the file (with provenance) and,
    with ``density``, its plot; return the summary and the paths written. Outputs are checked
    before anything is computed. Unless ``overwrite``, an existing summary is kept: one computed
    from the same inputs (the same command run again) is read instead of computed, and only the
    missing figure drawn; any other existing output is refused (:class:`OutputExists`)."""
    if not isinstance(cfg.options, SummaryOptions):
        raise LandscapeError(f"`options` must be a landscape.hessian.SummaryOptions, got {type(cfg.options).__name__}")
    if cfg.png and not cfg.options.density:
        raise LandscapeError("`png` draws the density: add `density`")
    outputs = (cfg.out, cfg.png_path()) if cfg.options.density else (cfg.out,)
    with owned_output(*outputs, overwrite=True):  # one writer; what exists is decided here and in _kept
        if not cfg.overwrite and cfg.options.density and os.path.exists(cfg.png_path()) and not os.path.exists(cfg.out):
            raise OutputExists(f"{cfg.png_path()!r} exists")
        return _summarize(cfg, command, log)


def inputs_of(cfg: HessianConfig, model_sha256: str, data_fingerprint: str) -> dict:
    """Everything a summary's values depend on: the checkpoint's and the data's checksums, the
    architecture, the loss and every option of the computation (a rerun whose inputs are these
    keeps the file)."""
    options = {f.name: getattr(cfg.options, f.name) for f in fields(cfg.options)}
    options["dtype"] = str(options["dtype"])
    return {"model_sha256": model_sha256, "data": data_fingerprint, "arch": cfg.arch,
            "num_classes": cfg.num_classes, "loss": cfg.loss, "options": options, "save_vectors": cfg.save_vectors}


def _kept(cfg: HessianConfig, inputs: dict) -> HessianSummary | None:
    """The summary already in ``cfg.out`` when it was computed from ``inputs``; None when there is
    none (or ``overwrite``); any other file there is refused, not replaced."""
    if cfg.overwrite or not os.path.exists(cfg.out):
        return None
    try:
        attrs, summary = read_summary(cfg.out)
    except LandscapeError as exc:
        raise OutputExists(f"{cfg.out!r} exists and is not a summary to keep ({one_line(exc)})") from None
    try:
        recorded = json.loads(attrs.get("inputs") or "null")
    except ValueError:
        recorded = None
    if recorded != json.loads(json.dumps(inputs)):
        differ = ([k for k in inputs if recorded.get(k) != inputs[k]] if isinstance(recorded, dict)
                  else ["it records none (written by an older landscape)"])
        raise OutputExists(f"{cfg.out!r} exists and was computed from other inputs ({', '.join(differ)})")
    return summary


def _summarize(cfg: HessianConfig, command: str, log: Callable[[str], None] | None) -> tuple[HessianSummary, list[str]]:
    device = resolve_device(cfg.device)
    data, indices = cfg.load()
    ckpt = read_checkpoint(cfg.model, cfg.unsafe_pickle)
    fingerprint = data_checksum((data.x, data.y))
    inputs = inputs_of(cfg, ckpt.sha256, fingerprint)
    summary, written = _kept(cfg, inputs), []
    if summary is None:
        model = network(ckpt, cfg.arch, cfg.num_classes, data=data)
        started = environment()
        with using_threads(choose_threads(cfg.threads)) as n_threads:
            summary = summarize(model, (data.x, data.y), cfg.loss, cfg.options, device=device, log=log,
                                progress=cfg.progress)
        attrs = {
            **cfg.provenance(), **started, "command": command,
            "model": os.path.abspath(cfg.model), "model_sha256": ckpt.sha256,
            "arch": cfg.arch, "split": cfg.split, "samples_requested": cfg.samples or "",
            "data_fingerprint": fingerprint, "device": str(device), "threads": n_threads, "inputs": inputs,
        }
        arrays = {"sample_indices": indices} if indices is not None else {}
        written.append(write_summary(cfg.out, summary, attrs, vectors=cfg.save_vectors, arrays=arrays))
    if cfg.options.density and (written or not os.path.exists(cfg.png_path())):
        from landscape.plot.hessian import density_figure  # matplotlib only when a figure is drawn

        fig = density_figure(read_summary(cfg.out)[1], title=f"{cfg.arch}: Hessian spectral density")
        with replacing(cfg.png_path()) as tmp:
            fig.savefig(tmp, dpi=150, format="png")
        written.append(cfg.png_path())
    return summary, written
