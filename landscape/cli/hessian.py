"""``landscape-hessian``: the Hessian spectrum of one checkpoint into an HDF5 file and a density plot.

    landscape-hessian --model ckpt.pt --arch resnet20 --dataset cifar10 --data-root DIR \\
        --samples 2000 --top-k 5 --trace --density --out r20_hessian.h5   # + r20_hessian.png

The file holds the top-k eigenvalues, the smallest one, |min/max|, the trace and the spectral
density when asked (see :mod:`landscape.hessian.summary`), with provenance.
"""

from __future__ import annotations

import os
import platform
import sys
import time
from collections.abc import Sequence

from landscape.cli._common import Parser, non_negative, positive, run_cli
from landscape.errors import LandscapeError

PROG = "landscape-hessian"


def _shape(text: str) -> tuple[int, ...]:
    try:
        dims = tuple(int(t) for t in text.lower().replace("x", ",").split(",") if t)
    except ValueError:
        dims = ()
    if not dims or min(dims) < 1:
        raise ValueError(text)
    return dims


def _positive_float(text: str) -> float:
    value = float(text)
    if not (value > 0) or value == float("inf"):
        raise ValueError(text)
    return value


_shape.__name__ = "shape C,H,W"
_positive_float.__name__ = "positive number"


def build_parser() -> Parser:
    """The argument parser (exposed for documentation and tests)."""
    p = Parser(prog=PROG, description="The Hessian spectrum of a network's mean loss at a checkpoint: the top-k "
               "and the smallest eigenvalues (Lanczos), the trace (Hutchinson) and the spectral density "
               "(stochastic Lanczos quadrature), into an HDF5 file with a PNG of the density.")
    m = p.add_argument_group("model")
    m.add_argument("--model", required=True, help="checkpoint: a state dict, or a dict holding one "
                   "(loaded with torch.load(weights_only=True))")
    m.add_argument("--arch", required=True, help="zoo name (resnet20, vgg9, digits_cnn, ...) or "
                   "package.module:callable")
    m.add_argument("--num-classes", type=positive, default=None, help="default: from the dataset")
    m.add_argument("--unsafe-pickle", action="store_true", help="allow checkpoints holding pickled Python "
                   "objects (a whole nn.Module): unpickling runs arbitrary code, only for files you trust")

    g = p.add_argument_group("data")
    g.add_argument("--dataset", default="digits", help="digits, synthetic, cifar10, cifar100, mnist or "
                   "package.module:callable (default digits)")
    g.add_argument("--data-root", help="folder with cifar-10-batches-py, cifar-100-python or the MNIST files")
    g.add_argument("--split", choices=["train", "test"], default="train")
    g.add_argument("--samples", type=positive, default=None, metavar="N",
                   help="a fixed random subset of N samples (its indices are recorded)")
    g.add_argument("--sample-seed", type=non_negative, default=0)
    g.add_argument("--synthetic-shape", type=_shape, default=(3, 32, 32), metavar="C,H,W")
    g.add_argument("--synthetic-size", type=positive, default=2048)
    g.add_argument("--synthetic-seed", type=non_negative, default=0)
    g.add_argument("--raw-data", action="store_true", help="no per-channel normalization")

    h = p.add_argument_group("Hessian")
    h.add_argument("--loss", choices=["crossentropy", "mse"], default="crossentropy")
    h.add_argument("--params", choices=["all", "original"], default="all",
                   help="all trainable parameters (default), or original: those with more than one "
                   "dimension (no biases or BatchNorm), as the original loss-landscape tool")
    h.add_argument("--convention", choices=["mean", "batch_sum"], default="mean",
                   help="mean: the Hessian of the mean loss (default); batch_sum: the sum of the batch-mean "
                   "Hessians, the original tool's scale (x the number of batches; batches of 128 unless "
                   "--batch-size)")
    h.add_argument("--float64", action="store_true", help="products in double precision (slower)")
    h.add_argument("--batch-size", type=positive, default=None,
                   help="samples per product batch (default 256; 128 with --convention batch_sum)")
    h.add_argument("--top-k", type=positive, default=5, help="largest eigenvalues to find (default 5)")
    h.add_argument("--tol", type=_positive_float, default=1e-3,
                   help="eigenvalue tolerance: residuals <= tol * |lambda_max| (default 1e-3)")
    h.add_argument("--max-iter", type=positive, default=None, help="Lanczos products at most (default 500)")
    h.add_argument("--trace", action="store_true", help="estimate the trace (Hutchinson)")
    h.add_argument("--trace-tol", type=_positive_float, default=1e-2,
                   help="stop the trace at stderr <= tol * |trace| (default 1e-2)")
    h.add_argument("--trace-max-samples", type=positive, default=200)
    h.add_argument("--density", action="store_true", help="the spectral density (SLQ) and its PNG")
    h.add_argument("--density-runs", type=positive, default=10)
    h.add_argument("--density-iters", type=positive, default=80)
    h.add_argument("--sigma", type=_positive_float, default=None,
                   help="Gaussian broadening of the density (default 5e-3 of the spectrum's width)")
    h.add_argument("--seed", type=non_negative, default=0)
    h.add_argument("--device", default="cpu", help="cpu (default), cuda, cuda:N, auto")
    h.add_argument("--threads", type=positive, default=None, help="torch threads (default: the idle cores)")

    o = p.add_argument_group("output")
    o.add_argument("--out", default="hessian.h5", help="HDF5 file (default hessian.h5)")
    o.add_argument("--png", default=None, help="density plot (default: --out with .png; needs --density)")
    o.add_argument("--save-vectors", action="store_true", help="store the top-k eigenvectors (float32)")
    o.add_argument("--overwrite", action="store_true", help="replace --out (and the PNG) if they exist")
    return p


def _check_output(path: str, overwrite: bool) -> None:
    folder = os.path.dirname(os.path.abspath(path))
    if not os.path.isdir(folder):
        raise LandscapeError(f"output folder {folder!r} does not exist")
    if not os.access(folder, os.W_OK):
        raise LandscapeError(f"output folder {folder!r} is not writable")
    if os.path.exists(path) and not overwrite:
        raise LandscapeError(f"{path!r} exists; use --overwrite to replace it")


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of ``landscape-hessian``; returns the exit code."""
    argv = list(sys.argv[1:] if argv is None else argv)

    def body() -> int:
        ns = build_parser().parse_args(argv)
        png = ns.png or (os.path.splitext(ns.out)[0] + ".png")
        _check_output(ns.out, ns.overwrite)
        if ns.density:
            _check_output(png, ns.overwrite)
        elif ns.png:
            raise LandscapeError("--png draws the density: add --density")

        import h5py
        import numpy as np
        import torch

        from landscape import __version__
        from landscape.checkpoint import load_model, sha256
        from landscape.data import load_dataset
        from landscape.evaluate import resolve_device
        from landscape.files import replacing
        from landscape.hessian.summary import summarize, write_summary
        from landscape.threads import threads

        device = resolve_device(ns.device)
        data = load_dataset(ns.dataset, root=ns.data_root, split=ns.split, raw=ns.raw_data,
                            shape=ns.synthetic_shape, num_classes=ns.num_classes or 10, size=ns.synthetic_size,
                            seed=ns.synthetic_seed)
        if len(data) == 0:
            raise LandscapeError(f"dataset {ns.dataset!r} ({ns.split}) is empty")
        indices = None
        if ns.samples is not None:
            data, indices = data.subset(ns.samples, ns.sample_seed)
        in_channels = data.x.shape[1] if data.x.dim() == 4 else 1
        model = load_model(ns.arch, ns.model, num_classes=ns.num_classes or data.num_classes or None,
                           in_channels=in_channels, unsafe_pickle=ns.unsafe_pickle)
        dtype = torch.float64 if ns.float64 else torch.float32
        started = time.strftime("%Y-%m-%dT%H:%M:%S%z")
        with threads(ns.threads) as n_threads:
            summary = summarize(
                model, (data.x, data.y), ns.loss, ns.top_k, ns.trace, ns.density, params=ns.params,
                convention=ns.convention, dtype=dtype, batch_size=ns.batch_size, device=device, tol=ns.tol,
                max_iter=ns.max_iter, trace_tol=ns.trace_tol, trace_max_samples=ns.trace_max_samples,
                density_runs=ns.density_runs, density_iters=ns.density_iters, sigma=ns.sigma, seed=ns.seed,
                log=lambda line: print(f"{PROG}: {line}", file=sys.stderr, flush=True),
            )
        attrs = {
            "landscape_version": __version__, "torch_version": torch.__version__, "numpy_version": np.__version__,
            "h5py_version": h5py.__version__, "python_version": platform.python_version(),
            "hostname": platform.node(), "command": " ".join([PROG, *argv]), "created": started,
            "model": os.path.abspath(ns.model), "model_sha256": sha256(ns.model), "arch": ns.arch,
            "dataset": ns.dataset, "data_root": ns.data_root or "", "split": ns.split, "raw_data": ns.raw_data,
            "synthetic": f"{ns.synthetic_shape} x {ns.synthetic_size}, seed {ns.synthetic_seed}"
            if ns.dataset == "synthetic" else "",
            "samples_requested": ns.samples or "", "sample_seed": ns.sample_seed if ns.samples else "",
            "data_fingerprint": _fingerprint(data), "device": str(device), "threads": n_threads,
        }
        extras = {"sample_indices": indices} if indices is not None else {}
        write_summary(ns.out, summary, attrs, vectors=ns.save_vectors, extras=extras)
        print(f"{PROG}: max {summary.max_eig:.6g}, min {summary.min_eig:.6g}, |min/max| {summary.eig_ratio:.4g}"
              + (f", trace {summary.trace.estimate:.6g} +- {summary.trace.stderr:.2g}" if summary.trace else ""))
        print(f"{PROG}: top {ns.top_k}: " + ", ".join(f"{v:.6g}" for v in summary.top_eigenvalues))
        print(f"{PROG}: wrote {ns.out}")
        if ns.density:
            from landscape.hessian.summary import read_summary
            from landscape.plot.hessian import density_figure

            fig = density_figure(read_summary(ns.out)[1], title=f"{ns.arch}: Hessian spectral density")
            with replacing(png) as tmp:
                fig.savefig(tmp, dpi=150, format="png")
            print(f"{PROG}: wrote {png}")
        return 0

    return run_cli(PROG, body)


def _fingerprint(data) -> str:
    import hashlib

    h = hashlib.sha256()
    for t in (data.x, data.y):
        c = t.detach().cpu().contiguous()
        h.update(f"{c.dtype}{tuple(c.shape)}".encode())
        h.update(c.numpy().tobytes())
    return "sha256:" + h.hexdigest()


if __name__ == "__main__":
    sys.exit(main())
