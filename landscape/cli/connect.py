"""``landscape-connect``: train a curve of low loss between two minimizers, or evaluate one along t.

    landscape-connect a.pt b.pt --arch resnet20 --dataset cifar10 --data-root DIR \\
        --curve bezier --epochs 20 --out ab_curve.pt       # trains the bend; the ends stay fixed
    landscape-connect --eval ab_curve.pt --points 41 --split train,test --out ab_path.h5
    mpirun -n 4 landscape-connect --eval ab_curve.pt ...   # the same file, computed by 4 ranks
"""

from __future__ import annotations

import sys
from collections.abc import Sequence

from landscape.cli._common import (
    Parser,
    add_data_options,
    join_negative_values,
    non_negative,
    positive,
    positive_float,
    run_cli,
)
from landscape.connect.curve import KINDS
from landscape.connect.training import CurveTraining
from landscape.errors import LandscapeError
from landscape.jobs import connect as job
from landscape.jobs.connect import CurveConfig
from landscape.runtime.parallel import world
from landscape.training import OptimizerConfig

PROG = "landscape-connect"


def build_parser() -> Parser:
    """The argument parser (exposed for documentation and tests)."""
    d = CurveConfig()
    t, o = d.training, d.training.optimizer
    p = Parser(prog=PROG, description="Train a curve (quadratic Bezier or polygonal chain with one bend) of low "
               "loss between two trained networks, the ends fixed (Garipov et al. 2018); or, with --eval, the "
               "loss and accuracy along the curve and along the straight line, with their barriers.")
    p.add_argument("ends", nargs="*", metavar="CKPT",
                   help="the two ends a and b (with --eval: optional, checked to be the curve's ends)")
    p.add_argument("--eval", metavar="CURVE.pt", help="evaluate this curve file along t instead of training one")
    m = p.add_argument_group("training the curve")
    m.add_argument("--arch", help="zoo name or package.module:callable of both ends")
    m.add_argument("--num-classes", type=positive, default=None, help="default: from the dataset")
    m.add_argument("--curve", dest="kind", choices=KINDS, default=d.kind, help=f"the curve's kind (default {d.kind})")
    m.add_argument("--epochs", type=positive, default=t.epochs, help=f"default {t.epochs}")
    m.add_argument("--lr", type=positive_float, default=o.lr, help=f"learning rate of the bend (default {o.lr}); "
                   "constant for half the epochs, then down to 1%% at 90%%")
    m.add_argument("--optimizer", default=o.name, help="sgd (default), adam or package.module:callable")
    m.add_argument("--momentum", type=float, default=o.momentum)
    m.add_argument("--weight-decay", type=float, default=o.weight_decay)
    m.add_argument("--batch-size", type=positive, default=None,
                   help=f"training batch (default {t.batch_size}); with --eval, the evaluation batch (default 256)")
    m.add_argument("--seed", type=non_negative, default=t.seed, help="seed of t's draws and the batches' order")
    m.add_argument("--unsafe-pickle", action="store_true",
                   help="allow checkpoints holding pickled Python objects (only files you trust)")
    add_data_options(p, "train,test", several=True)
    p.set_defaults(dataset=None)  # with --eval: the curve's data
    e = p.add_argument_group("evaluation (--eval)")
    e.add_argument("--points", type=positive, default=41, help="values of t, evenly spaced in [0, 1] (default 41)")
    e.add_argument("--t", default=None, metavar="MIN:MAX:NUM",
                   help="the values of t instead of --points: NUM evenly spaced from MIN to MAX, within [0, 1]")
    e.add_argument("--bn-recompute", type=non_negative, default=None, metavar="N",
                   help="re-estimate BatchNorm statistics from N training batches at every t (default: all of them; "
                   "networks with BatchNorm only)")
    e.add_argument("--repair-stats", action="store_true",
                   help="REPAIR (Jordan et al. 2023): at every t, give each unit of the layers no BatchNorm follows "
                   "the mean and std interpolated from the ends' (statistics from the --bn-recompute batches)")
    p.add_argument("--device", default="cpu", help="cpu (default), cuda, cuda:N, auto")
    p.add_argument("--threads", type=positive, default=None,
                   help="torch threads per process (default: the idle cores, or OMP_NUM_THREADS)")
    p.add_argument("--out", default=None, help="the curve file (default curve.pt) or, with --eval, the path file "
                   "(default path.h5; rerunning the same command resumes it)")
    m.add_argument("--run-folder", default=None, metavar="DIR",
                   help="the training run's checkpoints and log.csv (default: --out without .pt, plus .run)")
    m.add_argument("--resume", action="store_true", help="continue an interrupted training run from its run folder")
    p.add_argument("--overwrite", action="store_true", help="replace an existing --out file (and training run)")
    p.add_argument("--no-progress", dest="progress", action="store_false")
    return p


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of ``landscape-connect``; returns the exit code."""
    argv = join_negative_values(list(sys.argv[1:] if argv is None else argv), ("--t",))

    def body() -> int:
        ns = build_parser().parse_args(argv)
        command = " ".join([PROG, *argv])
        data = {k: getattr(ns, k) for k in ("data_root", "samples", "sample_seed", "synthetic_shape",
                                            "synthetic_size", "synthetic_seed", "raw_data", "num_classes")}
        if ns.eval:
            cfg = job.PathConfig(curve=ns.eval, ends=tuple(ns.ends), points=ns.points, t=ns.t, out=ns.out or "path.h5",
                                 dataset=ns.dataset, split=ns.split, bn_recompute=ns.bn_recompute,
                                 repair_stats=ns.repair_stats, batch_size=ns.batch_size or 256, device=ns.device,
                                 threads=ns.threads, overwrite=ns.overwrite, progress=ns.progress, command=command,
                                 **data)
            comm = world()
            result = job.write_path(cfg, comm)
            if comm.rank == 0:
                print(f"{PROG}: wrote {cfg.out} ({len(result.t)} values of t, splits {','.join(result.by_split)}"
                      + (", REPAIR" if cfg.repair_stats else "") + ")")
                for split, entry in result.by_split.items():
                    for key, what in (("barrier", "barrier (max - mean of the ends)"),
                                      ("chord_barrier", "barrier above the chord (max of L(t) - (1-t) L(a) - t L(b))")):
                        b, e = entry[key], entry[f"err_{key}"]
                        print(f"{PROG}: {split} {what}: curve {b['curve']:.4g}, straight line {b['line']:.4g} "
                              f"(loss); curve {e['curve']:.3g}, straight line {e['line']:.3g} (error %)")
            return 0
        if len(ns.ends) != 2:
            raise LandscapeError(f"training a curve takes two checkpoints (the ends a and b); {len(ns.ends)} given")
        optimizer = OptimizerConfig(name=ns.optimizer, lr=ns.lr, momentum=ns.momentum, weight_decay=ns.weight_decay,
                                    nesterov=False)
        training = CurveTraining(optimizer=optimizer, epochs=ns.epochs, seed=ns.seed,
                                 batch_size=ns.batch_size or CurveTraining.batch_size)  # checked before any work
        cfg = job.CurveConfig(a=ns.ends[0], b=ns.ends[1], arch=ns.arch, out=ns.out or "curve.pt", kind=ns.kind,
                              training=training, device=ns.device, threads=ns.threads, folder=ns.run_folder,
                              resume=ns.resume, overwrite=ns.overwrite, unsafe_pickle=ns.unsafe_pickle,
                              progress=ns.progress, command=command, dataset=ns.dataset or "digits", **data)
        curve, path = job.train(cfg)
        last = curve.meta["history"][-1]["train_loss"]
        print(f"{PROG}: wrote {path} ({curve.kind} curve, {training.epochs} epochs, last epoch's loss along it "
              f"{last:.4g}; run folder {job.run_folder(cfg)})")
        return 0

    return run_cli(PROG, body, {"ConfigMismatch": "use --overwrite to replace it, or --out for a new file",
                                "DamagedFile": "rerun with --overwrite to start again"})


if __name__ == "__main__":
    sys.exit(main())
