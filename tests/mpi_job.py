"""Test-only jobs that tests/engine/test_mpi.py starts under a real ``mpirun`` (and serially).

``python tests/mpi_job.py surface --model M --out O [...]``: landscape-surf's job through the CLIs'
error handling (one line and exit code 2 for bad input). ``--delay S`` makes every point take at
least S seconds, so that a test can kill the job part-way; ``--pid-dir D`` makes every rank write
its process id to ``D/rank<r>.pid``.

``python tests/mpi_job.py map --n N --log L [...]``: ``map_points`` over a recording job. Rank 0
appends ``index rank value`` to L for every result as it arrives, and ``aborted`` when the job is
aborted; ``--fail-rank R --fail-after K`` makes rank R raise on the K-th point it computes.

Nothing here is part of the library: the failure and slow-down hooks live only in this script.
"""

from __future__ import annotations

import argparse
import os
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def run_surface(args: argparse.Namespace, comm) -> int:
    import landscape.evaluation.evaluator as evaluate
    from landscape.cli._common import run_cli
    from landscape.data.datasets import DataSpec
    from landscape.directions.options import Directions
    from landscape.engine.options import Output
    from landscape.evaluation.options import EvalOptions
    from landscape.jobs.surf import SurfConfig, surf
    from landscape.space.grid import Grid

    if args.pid_dir:
        with open(os.path.join(args.pid_dir, f"rank{comm.rank}.pid"), "w") as f:
            f.write(str(os.getpid()))
    if args.delay:
        call = evaluate.Evaluator.__call__

        def slow(self):
            t0 = time.monotonic()
            result = call(self)
            time.sleep(max(0.0, args.delay - (time.monotonic() - t0)))
            return result

        evaluate.Evaluator.__call__ = slow
    cfg = SurfConfig(
        model=args.model, arch="digits_cnn", data=DataSpec(dataset="digits", samples=args.samples),
        grid=Grid(args.x, args.y or None), adaptive=args.adaptive, directions=Directions(seed=args.seed),
        evaluation=EvalOptions(loss_fn="crossentropy", device="cpu", threads=1, batch_size=args.batch_size or None),
        output=Output(args.out, overwrite=args.overwrite, chunk_size=args.chunk_size, flush_seconds=args.flush_seconds,
                      progress=args.progress), metrics=tuple(args.metrics.split(",")))

    def body() -> int:
        surf(cfg, comm)
        return 0

    return run_cli("mpi_job", body)


def run_api(args: argparse.Namespace, comm) -> int:
    """A user's script: ``landscape.surface`` on an in-memory model and data, a volume, with a metric."""
    import torch

    import landscape as ls

    torch.manual_seed(0)
    model = torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(64, 10))
    data = ls.load_dataset("digits", split="test")

    def weight_norm(m):
        return float(m[1].weight.norm())

    surf = ls.surface(model, data, ls.Grid((-1, 1, 3), (-1, 1, 3), (-0.5, 0.5, 2)),
                      metrics={"weight_norm": weight_norm}, evaluation=ls.EvalOptions(batch_size=64),
                      output=ls.Output(args.out, progress=False), comm=comm)
    assert surf.completed.all(), "every rank gets the finished surface"
    return 0


def run_map(args: argparse.Namespace, comm) -> int:
    from landscape.runtime.parallel import map_points

    computed = 0

    def job(k: int) -> dict:
        nonlocal computed
        computed += 1
        if comm.rank == args.fail_rank and computed >= args.fail_after:
            raise RuntimeError(f"injected failure at point {k}")
        time.sleep(args.delay)
        return {"rank": comm.rank, "value": k * k}

    log = open(args.log, "a") if comm.rank == 0 else None

    def on_result(k: int, result: dict) -> None:
        log.write(f"{k} {result['rank']} {result['value']}\n")
        log.flush()

    def on_abort() -> None:
        log.write("aborted\n")
        log.flush()

    indices = [int(i) for i in args.indices.split(",")] if args.indices else list(range(args.n))
    map_points(job, indices, on_result, comm, args.chunk_size, on_abort, prog="mpi_job")
    return 0


def main() -> int:
    p = argparse.ArgumentParser()
    sub = p.add_subparsers(dest="mode", required=True)
    s = sub.add_parser("surface")
    s.add_argument("--model", required=True)
    s.add_argument("--out", required=True)
    s.add_argument("--samples", type=int, default=200)
    s.add_argument("--x", default="-1:1:5")
    s.add_argument("--y", default="-1:1:5")
    s.add_argument("--batch-size", type=int, default=100, help="0: let the evaluator pick")
    s.add_argument("--chunk-size", type=int, default=1)
    s.add_argument("--flush-seconds", type=float, default=2.0)
    s.add_argument("--delay", type=float, default=0.0)
    s.add_argument("--pid-dir")
    s.add_argument("--overwrite", action="store_true")
    s.add_argument("--seed", type=int, default=0)
    s.add_argument("--metrics", default="loss")
    s.add_argument("--progress", action="store_true")
    s.add_argument("--adaptive", type=float, default=None)
    a = sub.add_parser("api")
    a.add_argument("--out", required=True)
    m = sub.add_parser("map")
    m.add_argument("--n", type=int, default=20)
    m.add_argument("--indices", help="comma-separated indices (default: 0..n-1)")
    m.add_argument("--log", required=True)
    m.add_argument("--chunk-size", type=int, default=1)
    m.add_argument("--delay", type=float, default=0.0)
    m.add_argument("--fail-rank", type=int, default=-1)
    m.add_argument("--fail-after", type=int, default=1)
    args = p.parse_args(sys.argv[1:] if len(sys.argv) > 1 else ["--help"])

    import torch

    from landscape.runtime.parallel import world

    torch.set_num_threads(1)
    comm = world()
    return {"surface": run_surface, "api": run_api, "map": run_map}[args.mode](args, comm)


if __name__ == "__main__":
    sys.exit(main())
