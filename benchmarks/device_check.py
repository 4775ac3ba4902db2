"""What a GPU run must show, in one script (under 5 minutes on one GPU); ``device_check.sh`` runs it.

    python benchmarks/device_check.py                  # on CUDA; prints a Markdown table, exit 1 if a check fails
    python benchmarks/device_check.py --device cpu --small   # the same code paths, tiny sizes (what CI runs)

Checks, each a row of the table:

1. ``surface``: a zoo network's 5x5 surface on the device equals the CPU one (loss, accuracy) to 1e-5;
2. ``mpirun -n 2``: two ranks sharing the one device give the serial surface (1e-5);
3. ``bf16``: autocast's largest relative loss error against fp32 on the same points (reported);
4. ``hessian``: Hessian-vector products on the device equal the CPU's (relative 1e-4);
5. ``1B transformer``: a decoder-only transformer of about 1e9 parameters (plain torch), 5x5
   surface: peak device memory beyond the model and the data (after one evaluation at the origin)
   over the parameters' bytes, against the bound 1.3;
6. ``ResNet-56``: seconds per point of a paper-scale surface (50,000 synthetic CIFAR-shaped images).
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
sys.path.insert(0, ROOT)

import numpy as np  # noqa: E402
import torch  # noqa: E402
from torch import nn  # noqa: E402

import landscape  # noqa: E402
from landscape.engine.options import Output  # noqa: E402
from landscape.errors import LandscapeError  # noqa: E402
from landscape.evaluation.options import EvalOptions  # noqa: E402
from landscape.models import build_model  # noqa: E402
from landscape.space.grid import Grid  # noqa: E402

ROWS: list[dict] = []


def row(name: str, result: str, ok: bool | None) -> None:
    ROWS.append({"check": name, "result": result, "ok": ok})
    mark = {True: "ok", False: "FAIL", None: "-"}[ok]
    print(f"[{mark}] {name}: {result}", flush=True)


def synthetic(n: int, shape=(3, 32, 32), seed: int = 0) -> landscape.Dataset:
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(n, *shape, generator=g)
    y = (x.flatten(1)[:, :10] * 3).argmax(1)
    return landscape.Dataset(x, y, 10, "synthetic")


def zoo(arch: str, in_channels: int = 3) -> nn.Module:
    torch.manual_seed(0)
    return build_model(arch, num_classes=10, in_channels=in_channels)


def quiet(path=None) -> Output:
    return Output(path, progress=False, overwrite=True)


def max_rel(a: np.ndarray, b: np.ndarray) -> float:
    return float(np.max(np.abs(a - b) / np.maximum(np.abs(b), 1e-12)))


def check_surface(dev: str, small: bool) -> None:
    arch, data = ("digits_cnn", landscape.load_dataset("digits")) if small else ("resnet20", synthetic(2048))
    grid = Grid((-1, 1, 5), (-1, 1, 5))
    ref = landscape.surface(zoo(arch, data.x.shape[1]), data, grid, evaluation=EvalOptions(device="cpu",
                                                                                           batch_size=256),
                            output=quiet())
    got = landscape.surface(zoo(arch, data.x.shape[1]), data, grid, evaluation=EvalOptions(device=dev, batch_size=256),
                            output=quiet())
    d = max(max_rel(got.values[k], ref.values[k]) for k in ("train_loss", "train_acc"))
    row(f"surface {arch} 5x5, {dev} vs cpu", f"max relative difference {d:.2e}", d <= 1e-5)


def check_mpi(dev: str, small: bool, work: str) -> None:
    mpirun = shutil.which("mpirun", path=os.path.dirname(sys.executable) + os.pathsep + os.environ.get("PATH", ""))
    if mpirun is None:
        row("mpirun -n 2 on one device", "no mpirun here: not run", None)
        return
    out = os.path.join(work, "mpi.h5")
    env = {**os.environ, "OMP_NUM_THREADS": "1", "OMPI_ALLOW_RUN_AS_ROOT": "1", "OMPI_ALLOW_RUN_AS_ROOT_CONFIRM": "1"}
    cmd = [mpirun, "-n", "2", sys.executable, os.path.abspath(__file__), "--mpi-rank-job", out, "--device", dev]
    if small:
        cmd.append("--small")
    t0 = time.perf_counter()
    proc = subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=240)
    if proc.returncode != 0:
        row("mpirun -n 2 on one device", f"failed: {proc.stderr.strip().splitlines()[-1:]}", False)
        return
    seconds = time.perf_counter() - t0
    mpi = landscape.read_surface(out)
    ref = landscape.surface(zoo("digits_cnn", 1), landscape.load_dataset("digits"), Grid((-1, 1, 5), (-1, 1, 5)),
                            evaluation=EvalOptions(device=dev, batch_size=256), output=quiet())
    d = max(max_rel(mpi.values[k], ref.values[k]) for k in ("train_loss", "train_acc"))
    row("mpirun -n 2 on one device", f"{mpi.attrs['mpi_ranks']} ranks, max relative difference to serial {d:.2e} "
        f"({seconds:.0f} s with start-up)", d <= 1e-5 and mpi.attrs["mpi_ranks"] == 2)


def mpi_rank_job(out: str, dev: str) -> int:
    landscape.surface(zoo("digits_cnn", 1), landscape.load_dataset("digits"), Grid((-1, 1, 5), (-1, 1, 5)),
                      evaluation=EvalOptions(device=dev, batch_size=256, threads=1), output=quiet(out))
    return 0


def check_bf16(dev: str, small: bool) -> None:
    arch, data = ("digits_cnn", landscape.load_dataset("digits")) if small else ("resnet20", synthetic(2048))
    grid = Grid((-1, 1, 3), (-1, 1, 3))
    fp32 = landscape.surface(zoo(arch, data.x.shape[1]), data, grid, evaluation=EvalOptions(device=dev),
                             output=quiet())
    try:
        bf16 = landscape.surface(zoo(arch, data.x.shape[1]), data, grid,
                                 evaluation=EvalOptions(device=dev, precision="bf16"), output=quiet())
    except LandscapeError as exc:
        row(f"bf16 autocast {arch}", f"refused: {exc}", None)
        return
    err = max_rel(bf16.values["train_loss"], fp32.values["train_loss"])
    row(f"bf16 autocast {arch}", f"largest relative loss error {err:.2e} (reported, not a pass/fail)", None)


def check_hessian(dev: str, small: bool) -> None:
    from landscape.hessian import HessianOperator

    arch, data = ("digits_cnn", landscape.load_dataset("digits")) if small else ("resnet20", synthetic(1024))
    v = None
    out = {}
    for device in ("cpu", dev):
        model = zoo(arch, data.x.shape[1]).eval()
        op = HessianOperator(model, data, device=device, batch_size=256)
        if v is None:
            v = np.random.default_rng(0).standard_normal(op.size)
        out[device] = np.asarray(op.matvec(v))
    d = float(np.linalg.norm(out[dev] - out["cpu"]) / np.linalg.norm(out["cpu"]))
    row(f"Hessian-vector product {arch}, {dev} vs cpu", f"relative difference {d:.2e}", d <= 1e-4)


class Decoder(nn.Module):
    """A decoder-only transformer language model in plain torch (no transformers needed)."""

    def __init__(self, vocab: int, dim: int, layers: int, heads: int, seq: int):
        super().__init__()
        self.embed = nn.Embedding(vocab, dim)
        self.pos = nn.Parameter(torch.zeros(seq, dim))
        layer = nn.TransformerEncoderLayer(dim, heads, 4 * dim, dropout=0.0, batch_first=True, norm_first=True)
        self.blocks = nn.TransformerEncoder(layer, layers, enable_nested_tensor=False)
        self.norm = nn.LayerNorm(dim)
        self.head = nn.Linear(dim, vocab, bias=False)
        self.register_buffer("mask", nn.Transformer.generate_square_subsequent_mask(seq), persistent=False)

    def forward(self, ids):
        h = self.embed(ids) + self.pos[: ids.shape[1]]
        h = self.blocks(h, mask=self.mask[: ids.shape[1], : ids.shape[1]], is_causal=True)
        return self.head(self.norm(h))


def _peak_rss() -> int:
    with open("/proc/self/status") as f:
        return next(int(line.split()[1]) * 1024 for line in f if line.startswith("VmHWM:"))


def check_big(dev: str, small: bool) -> None:
    vocab, dim, layers, seq = (1000, 64, 2, 32) if small else (32000, 2048, 19, 256)
    torch.manual_seed(0)
    with torch.device(dev):
        model = Decoder(vocab, dim, layers, max(1, dim // 128), seq)
    params = sum(p.numel() for p in model.parameters())
    nbytes = sum(p.numel() * p.element_size() for p in model.parameters())
    ids = torch.randint(0, vocab, (16, seq))
    data = (ids, ids)  # next-token labels
    ev = EvalOptions(device=dev, batch_size=8, loss_fn="lm")
    from landscape.evaluation.evaluator import Evaluator

    floor = Evaluator(model, data, EvalOptions(device=dev, batch_size=8, loss_fn="lm"))  # the floor's activations
    floor()
    del floor
    cuda = dev.startswith("cuda")
    if cuda:
        torch.cuda.synchronize()
        before = torch.cuda.memory_allocated()
        torch.cuda.reset_peak_memory_stats()
    else:
        with open("/proc/self/clear_refs", "w") as f:
            f.write("5")
        from bench_memory import _status

        before = _status("VmRSS")
    t0 = time.perf_counter()
    surf = landscape.surface(model, data, Grid((-1, 1, 5), (-1, 1, 5)), evaluation=ev, output=quiet())
    seconds = time.perf_counter() - t0
    peak = torch.cuda.max_memory_allocated() if cuda else _peak_rss()
    ratio = (peak - before) / nbytes
    finite = bool(np.isfinite(surf.values["train_loss"]).all())
    row(f"transformer {params / 1e6:,.0f}M parameters, 5x5 surface on {dev}",
        f"peak {'device' if cuda else 'resident'} memory beyond model+data {ratio:.2f}x the parameters' "
        f"{nbytes / 2**30:.2f} GiB (bound 1.3), {seconds:.0f} s ({seconds / 25:.1f} s/point)",
        ratio <= 1.3 and finite)


def check_resnet56(dev: str, small: bool) -> None:
    n = 512 if small else 50_000
    data = synthetic(n)
    model = zoo("resnet56")
    grid = Grid((-1, 1, 3))
    t0 = time.perf_counter()
    surf = landscape.surface(model, data, grid, evaluation=EvalOptions(device=dev), output=quiet())
    seconds = time.perf_counter() - t0
    row(f"ResNet-56, {n:,} images, 3 points on {dev}",
        f"{seconds / 3:.2f} s per point (set-up included; batch {surf.attrs.get('batch_size')})", None)


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--device", default="cuda")
    p.add_argument("--small", action="store_true", help="tiny sizes: the code paths, not the figures")
    p.add_argument("--checks", default="surface,mpi,bf16,hessian,big,resnet56")
    p.add_argument("--json", metavar="FILE", help="also write the rows as JSON")
    p.add_argument("--mpi-rank-job", metavar="OUT", help=argparse.SUPPRESS)
    args = p.parse_args(argv)
    if args.mpi_rank_job:
        return mpi_rank_job(args.mpi_rank_job, args.device)
    if args.device.startswith("cuda") and not torch.cuda.is_available():
        print("no CUDA device: nothing run (run with --device cpu --small to try the code paths)")
        return 0
    if args.device.startswith("cuda"):
        print(f"device: {torch.cuda.get_device_name()}, torch {torch.__version__}", flush=True)
    work = tempfile.mkdtemp(prefix="device_check_")
    t0 = time.perf_counter()
    checks = {"surface": lambda: check_surface(args.device, args.small),
              "mpi": lambda: check_mpi(args.device, args.small, work),
              "bf16": lambda: check_bf16(args.device, args.small),
              "hessian": lambda: check_hessian(args.device, args.small),
              "big": lambda: check_big(args.device, args.small),
              "resnet56": lambda: check_resnet56(args.device, args.small)}
    for name in args.checks.split(","):
        try:
            checks[name]()
        except Exception as exc:  # noqa: BLE001 - one failing check must not hide the others' results
            row(name, f"error: {type(exc).__name__}: {str(exc).splitlines()[0] if str(exc) else ''}", False)
    print("\n| check | result | pass |\n|---|---|---|")
    for r in ROWS:
        print(f"| {r['check']} | {r['result']} | {({True: 'yes', False: 'NO', None: '-'})[r['ok']]} |")
    print(f"\ntotal {time.perf_counter() - t0:.0f} s")
    if args.json:
        with open(args.json, "w") as f:
            json.dump(ROWS, f, indent=1)
    return 1 if any(r["ok"] is False for r in ROWS) else 0


if __name__ == "__main__":
    sys.exit(main())
