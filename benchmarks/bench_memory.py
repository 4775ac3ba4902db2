"""Peak memory of a 2D surface beyond the model and the data, as a multiple of the model's bytes.

    python benchmarks/bench_memory.py                     # MLPs of 1M, 10M, 50M, 200M parameters
    python benchmarks/bench_memory.py --sizes 1M,10M --baseline main

Each case runs in a fresh subprocess: it builds an MLP of about the given number of float32
parameters and 256 samples, runs a tiny surface first (so imports and thread pools are counted in
the baseline, not the run) and two evaluations of the model over the data by the same evaluator
(its activations are any evaluation's, the floor's too), resets the peak resident set size
(``/proc/self/clear_refs``), runs a 2x2 surface with ``landscape.surface`` (batch 256, no file),
and reports (VmHWM - VmRSS before)
/ parameter bytes. ``new``: this checkout (directions regenerated tensor by tensor); ``hold``:
this checkout with ``Directions(hold=True)``; ``baseline``: the ``landscape`` package of git
revision ``--baseline`` (``git archive``), i.e. the path as it was.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time

from landscape.evaluation.options import EvalOptions

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)


def _status(key: str) -> int:
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith(key + ":"):
                return int(line.split()[1]) * 1024
    raise RuntimeError(f"no {key} in /proc/self/status")


def mlp(params: int):
    """Eight square linear layers (and a 10-way head) with about ``params`` parameters."""
    import torch

    width = max(16, int((params / 8) ** 0.5))
    return torch.nn.Sequential(*[m for _ in range(8) for m in (torch.nn.Linear(width, width), torch.nn.ReLU())],
                               torch.nn.Linear(width, 10)), width


def head(params: int):
    """A network whose largest tensor is two thirds of it, as a language model's embedding or
    output layer: three square layers and a wide head of ``6 width`` classes."""
    import torch

    width = max(16, int((params / 9) ** 0.5))
    layers = [m for _ in range(3) for m in (torch.nn.Linear(width, width), torch.nn.ReLU())]
    return torch.nn.Sequential(*layers, torch.nn.Linear(width, 6 * width)), width


SHAPES = {"mlp": mlp, "head": head}


def case(params: int, mode: str, shape: str = "mlp") -> dict:
    """One measurement, in this (fresh) process."""
    import torch

    import landscape
    from landscape.directions.options import Directions
    from landscape.engine.options import Output
    from landscape.evaluation.options import EvalOptions

    torch.manual_seed(0)
    options = {"hold": True} if mode == "hold" else {}
    evaluation = EvalOptions(batch_size=256, device="cpu", threads=1)
    quiet = Output(progress=False)

    def run(model, data):
        directions = Directions(**options) if options else None
        return landscape.surface(model, data, landscape.Grid((-1, 1, 2), (-1, 1, 2)), directions=directions,
                                 evaluation=evaluation, output=quiet)

    small, w = mlp(10_000)  # warm-up: imports, thread pools, allocator
    run(small, (torch.randn(256, w), torch.randint(0, 10, (256,))))
    del small
    model, width = SHAPES[shape](params)
    data = (torch.randn(256, width), torch.randint(0, 10, (256,)))
    nbytes = sum(p.numel() * p.element_size() for p in model.parameters())
    from landscape.evaluation.evaluator import Evaluator

    floor = Evaluator(model, data, EvalOptions(device="cpu", batch_size=256))  # one evaluation at the origin:
    floor()  # the floor's activations and buffers belong to any evaluation, not to the surface
    floor()
    del floor
    with open("/proc/self/clear_refs", "w") as f:
        f.write("5")  # reset VmHWM to the current resident size
    before = _status("VmRSS")
    t0 = time.perf_counter()
    surf = run(model, data)
    seconds = time.perf_counter() - t0
    peak = _status("VmHWM")
    largest = max(p.numel() for p in model.parameters()) / sum(p.numel() for p in model.parameters())
    return {"params": sum(p.numel() for p in model.parameters()), "param_bytes": nbytes, "mode": mode,
            "shape": shape, "largest": largest,
            "extra_bytes": peak - before, "ratio": (peak - before) / nbytes, "seconds": seconds,
            "loss": [float(v) for v in surf.values["train_loss"].ravel()]}


def speed(archs: list[str], n: int, rounds: int) -> list[dict]:
    """Seconds per point (move + evaluation) of ``bench_surface.py``'s networks with the directions
    held (``hold=True``, the path before) and regenerated (the default), interleaved round-robin."""
    import torch

    sys.path.insert(0, HERE)
    from bench_surface import make_data

    from landscape.directions.sampling import random_directions
    from landscape.evaluation.evaluator import Evaluator
    from landscape.models import build_model
    from landscape.space.params import Mover, snapshot

    rows = []
    for arch in archs:
        torch.manual_seed(0)
        model = build_model(arch, num_classes=10, in_channels=3)
        _, _, data = make_data(n)
        ev = Evaluator(model, data, EvalOptions(device="cpu", batch_size=128))
        origin = snapshot(model)
        movers = {"hold": Mover(model, origin, random_directions(origin, 2, seed=0)),
                  "new": Mover(model, origin, random_directions(origin, 2, seed=0, lazy=True))}
        times: dict[str, list[float]] = {k: [] for k in movers}
        losses: dict[str, list[float]] = {k: [] for k in movers}
        for r in range(rounds + 1):
            for name, mover in movers.items():
                t0 = time.perf_counter()
                mover.move_((0.1 * (r + 1), -0.05 * (r + 1)))
                loss = ev()["loss"]
                if r:  # round 0 warms up
                    times[name].append(time.perf_counter() - t0)
                    losses[name].append(float(loss))
        move_times = {}
        for name, mover in movers.items():  # the move alone, where the two paths differ
            ts = []
            for r in range(5):
                t0 = time.perf_counter()
                mover.move_((0.1 * (r + 1), -0.05 * (r + 1)))
                ts.append(time.perf_counter() - t0)
            move_times[name] = sorted(ts)[2]
        movers["hold"].restore_()
        med = {k: sorted(v)[len(v) // 2] for k, v in times.items()}
        diff = max(abs(a - b) for a, b in zip(losses["hold"], losses["new"], strict=True))
        rows.append({"arch": arch, "params": sum(p.numel() for p in model.parameters()), "n": n,
                     "hold": med["hold"], "new": med["new"], "ratio": med["new"] / med["hold"], "loss_diff": diff,
                     "move_hold": move_times["hold"], "move_new": move_times["new"],
                     "move_ratio": (med["hold"] - move_times["hold"] + move_times["new"]) / med["hold"]})
        print(f"{arch}: held {med['hold']:.3f} s/point, regenerated {med['new']:.3f} s/point, "
              f"ratio {med['new'] / med['hold']:.3f}; the move alone: held {move_times['hold'] * 1e3:.1f} ms, "
              f"regenerated {move_times['new'] * 1e3:.1f} ms; largest loss difference {diff:.1e}", flush=True)
    return rows


def speed_table(rows: list[dict]) -> str:
    lines = ["| network | parameters | images | held s/point | regenerated s/point | ratio (timed) | move held ms "
             "| move regenerated ms | ratio (held point + move difference) | loss difference |",
             "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|"]
    for r in rows:
        lines.append(f"| {r['arch']} | {r['params']:,} | {r['n']} | {r['hold']:.3f} | {r['new']:.3f} | "
                     f"{r['ratio']:.3f} | {r['move_hold'] * 1e3:.1f} | {r['move_new'] * 1e3:.1f} | "
                     f"{r['move_ratio']:.3f} | {r['loss_diff']:.1e} |")
    return "\n".join(lines)


def baseline_tree(rev: str) -> str:
    """The ``landscape`` package of git revision ``rev``, extracted into a temporary folder."""
    folder = tempfile.mkdtemp(prefix="bench_memory_")
    archive = subprocess.run(["git", "-C", ROOT, "archive", rev, "landscape"], check=True, capture_output=True).stdout
    subprocess.run(["tar", "-x", "-C", folder], input=archive, check=True)
    return folder


def measure(params: int, mode: str, src: str, shape: str = "mlp") -> dict:
    env = {**os.environ, "PYTHONPATH": src + os.pathsep + os.environ.get("PYTHONPATH", ""), "OMP_NUM_THREADS": "1"}
    out = subprocess.run([sys.executable, os.path.abspath(__file__), "--case", str(params),
                          "--mode", "hold" if mode == "hold" else "new", "--shape", shape],
                         env=env, capture_output=True, text=True, check=False)
    if out.returncode != 0:
        raise SystemExit(f"case {params} {mode} failed:\n{out.stderr[-2000:]}")
    row = json.loads(out.stdout.strip().splitlines()[-1])
    row["mode"] = mode
    return row


def parse_size(text: str) -> int:
    text = text.strip().upper()
    scale = {"K": 1e3, "M": 1e6, "G": 1e9}.get(text[-1:], 1)
    return int(float(text.rstrip("KMG")) * scale)


def table(rows: list[dict], rev: str) -> str:
    lines = ["| network | parameters | largest tensor | model MB | path | peak beyond model+data (MB) "
             "| ratio to model bytes | seconds |", "|---|---:|---:|---:|---|---:|---:|---:|"]
    names = {"baseline": f"before (`{rev}`)", "new": "regenerated (default)", "hold": "`hold=True`"}
    for r in rows:
        lines.append(f"| {r.get('shape', 'mlp')} | {r['params'] / 1e6:.1f}M | {100 * r.get('largest', 0):.0f}% "
                     f"| {r['param_bytes'] / 2**20:.0f} | {names[r['mode']]} | "
                     f"{r['extra_bytes'] / 2**20:.0f} | {r['ratio']:.2f} | {r['seconds']:.2f} |")
    return "\n".join(lines)


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--sizes", default="1M,10M,50M,200M", help="parameter counts, comma-separated")
    p.add_argument("--modes", default="baseline,new,hold", help="baseline, new, hold (comma-separated)")
    p.add_argument("--baseline", default="26ac2d9", help="git revision of the path before (default: main at 15:22)")
    p.add_argument("--speed", action="store_true", help="time bench_surface.py networks: held vs regenerated")
    p.add_argument("--archs", default="resnet20,vgg9")
    p.add_argument("--images", type=int, default=2048)
    p.add_argument("--rounds", type=int, default=3)
    p.add_argument("--case", type=int, help=argparse.SUPPRESS)
    p.add_argument("--mode", default="new", help=argparse.SUPPRESS)
    p.add_argument("--shape", default="mlp", help="mlp (eight square layers) or head (one tensor two thirds of "
                   "the network, as a language model's embedding); comma-separated for several")
    args = p.parse_args(argv)
    if args.case:
        print(json.dumps(case(args.case, args.mode, args.shape)))
        return 0
    if args.speed:
        rows = speed(args.archs.split(","), args.images, args.rounds)
        print(f"Speed: directions regenerated vs held, one thread. bench_surface.py's networks and synthetic "
              f"CIFAR-shaped data; seconds per point (move + evaluation, batch 128), median of {args.rounds} rounds "
              f"timed round-robin.\n")
        print(speed_table(rows))
        return 0
    modes = [m for m in args.modes.split(",") if m]
    src = {"new": ROOT, "hold": ROOT}
    if "baseline" in modes:
        src["baseline"] = baseline_tree(args.baseline)
    rows = []
    for shape, size in [(sh, parse_size(s)) for sh in args.shape.split(",") for s in args.sizes.split(",")]:
        by_mode = {}
        for mode in modes:
            row = measure(size, mode, src[mode], shape)
            by_mode[mode] = row
            rows.append(row)
            print(f"{row['params']:>11,} {mode:>8}: {row['extra_bytes'] / 2**20:8.1f} MB beyond model+data, "
                  f"ratio {row['ratio']:.2f}, {row['seconds']:.2f} s", flush=True)
        losses = [r["loss"] for r in by_mode.values()]
        diff = max(abs(a - b) for other in losses[1:] for a, b in zip(losses[0], other, strict=True)) \
            if len(losses) > 1 else 0.0
        print(f"{'':>11}  largest loss difference between paths: {diff:.2e}", flush=True)
    print("\nPeak memory of a 2D surface: a 2x2 surface of an MLP (mlp: eight square layers; head: three square "
          "layers and a head holding two thirds of the parameters, as a language model's embedding), 256 samples, "
          "batch 256, "
          "one thread; peak RSS (VmHWM after resetting it) beyond what the process held with the model and data "
          "built and the model evaluated once at its origin, over the parameters' bytes.\n")
    print(table(rows, args.baseline))
    return 0


if __name__ == "__main__":
    from _report import run_and_report  # writes this script's section of docs/benchmarks.md

    sys.exit(run_and_report(main, name="bench_memory_speed" if "--speed" in sys.argv[1:] else None,
                            when=lambda argv: "--case" not in argv))
