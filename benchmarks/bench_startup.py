"""Start-up cost of ``landscape-surf``: whole-process time against the time per point, and the
fixed cost of a run expressed in points.

    python benchmarks/bench_startup.py                      # resnet20, synthetic 3x32x32, 1,000 images
    python benchmarks/bench_startup.py --arch digits_cnn --dataset digits --samples 1000
    python benchmarks/bench_startup.py --baseline /path/to/older/checkout   # its cold start beside ours

Each variant is a fresh ``landscape-surf`` process (``python -m landscape.cli.surf``) computing a 1D
surface of ``--small`` and of ``--large`` points around the same random checkpoint, timed as a
whole (imports, data, model, probe, points, file). The time per point is the slope between the two
sizes, the fixed cost what is left at ``--small``: ``fixed = T(small) - small * per_point``,
reported in seconds and in points. Three start-ups are compared:

- ``cold cache``: an empty cache folder (``$LANDSCAPE_CACHE``), so the batch-size probe runs;
- ``warm cache``: the same folder again, so the probe's choice is reused;
- ``--batch-size``: the batch size given, no probe at all (the floor of start-up).

The original loss-landscape tool (tomgoldstein/loss-landscape) cannot be run here: the machine has
no network to clone it or its dependencies. Its whole-process times for a 9-point ResNet-20 job
reported in issue 24 (37-53 s at 1 thread, 123-144 s at 2 threads under load) were measured on
another session's machine and are not comparable with numbers from this script.
"""

from __future__ import annotations

import argparse
import glob
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time

ROOT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..")

NOTE = ("Fixed cost = whole-process time of the small run minus its points at the slope's time per point. "
        "The original loss-landscape tool cannot be run on this machine (no network to fetch it and its "
        "dependencies), so it has no row here.")

CHECKPOINT = """
import sys, torch
from landscape.models import build_model
torch.manual_seed(0)
in_ch = 1 if sys.argv[2] == "digits" else 3
torch.save(build_model(sys.argv[1], num_classes=10, in_channels=in_ch).state_dict(), sys.argv[3])
"""


def run(args: argparse.Namespace, ckpt: str, points: int, cache: str, out: str, batch: int | None,
        root: str = ROOT) -> float:
    env = {**os.environ, "PYTHONPATH": root + os.pathsep + os.environ.get("PYTHONPATH", ""),
           "LANDSCAPE_CACHE": cache, "OMP_NUM_THREADS": str(args.threads)}
    cmd = [sys.executable, "-m", "landscape.cli.surf", "--model", ckpt, "--arch", args.arch, "--dataset",
           args.dataset, "--samples", str(args.samples), f"--x=-1:1:{points}", "--out", out, "--overwrite",
           "--no-progress", "--threads", str(args.threads)]
    if args.dataset == "synthetic":
        cmd += ["--synthetic-size", str(max(args.samples, 2048))]
    if batch:
        cmd += ["--batch-size", str(batch)]
    for stale in glob.glob(os.path.splitext(out)[0] + ".*"):  # a file there would lend its recorded batch size
        os.remove(stale)
    t0 = time.perf_counter()
    # from the scratch folder: `python -m` puts the working folder first on sys.path, ahead of PYTHONPATH
    subprocess.run(cmd, env=env, check=True, capture_output=True, text=True, cwd=os.path.dirname(out))
    return time.perf_counter() - t0


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--arch", default="resnet20")
    p.add_argument("--dataset", default="synthetic", help="synthetic (3x32x32, default) or digits")
    p.add_argument("--samples", type=int, default=1000)
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--small", type=int, default=2, help="points of the small run (default 2)")
    p.add_argument("--large", type=int, default=8, help="points of the large run (default 8)")
    p.add_argument("--rounds", type=int, default=2, help="runs per variant (median)")
    p.add_argument("--batch-size", type=int, default=128, help="the batch size of the no-probe variant")
    p.add_argument("--baseline", metavar="CHECKOUT", default=None,
                   help="also time the cold start of another checkout of landscape (e.g. one before the probe "
                   "was cut down), in the same rounds")
    a = p.parse_args(argv)
    with tempfile.TemporaryDirectory() as tmp:
        ckpt = os.path.join(tmp, "model.pt")
        env = {**os.environ, "PYTHONPATH": ROOT}
        subprocess.run([sys.executable, "-c", CHECKPOINT, a.arch, a.dataset, ckpt], env=env, check=True)
        out = os.path.join(tmp, "s.h5")
        variants = ["cold cache", "warm cache", "--batch-size"] + (["baseline, cold"] if a.baseline else [])
        times: dict[str, dict[int, list[float]]] = {v: {a.small: [], a.large: []} for v in variants}
        for r in range(a.rounds):
            for n in (a.small, a.large):
                cache = os.path.join(tmp, f"cache{r}_{n}")
                times["cold cache"][n].append(run(a, ckpt, n, cache, out, None))
                times["warm cache"][n].append(run(a, ckpt, n, cache, out, None))
                times["--batch-size"][n].append(run(a, ckpt, n, cache, out, a.batch_size))
                if a.baseline:
                    times["baseline, cold"][n].append(run(a, ckpt, n, os.path.join(tmp, f"base{r}_{n}"), out, None,
                                                          os.path.abspath(a.baseline)))
    print(f"# bench_startup: {platform.processor() or platform.machine()}, {os.cpu_count()} cores, load average "
          f"{os.getloadavg()[0]:.2f}; {a.arch} on {a.samples} {a.dataset} samples, {a.threads} thread(s), "
          f"{a.small} and {a.large} points, median of {a.rounds}\n")
    print(f"| start-up | whole process, {a.small} points (s) | {a.large} points (s) | per point (s) | fixed cost (s) "
          "| fixed cost (points) |")
    print("|---|---|---|---|---|---|")
    for name, t in times.items():
        small, large = statistics.median(t[a.small]), statistics.median(t[a.large])
        per_point = max((large - small) / (a.large - a.small), 1e-9)
        fixed = small - a.small * per_point
        print(f"| {name} | {small:.1f} | {large:.1f} | {per_point:.2f} | {fixed:.1f} | {fixed / per_point:.1f} |")
    print(f"\n{NOTE}")
    return 0


if __name__ == "__main__":
    from _report import run_and_report  # writes this script's section of docs/benchmarks.md

    sys.exit(run_and_report(main))
