"""``landscape-connect``: train a curve of low loss between two minimizers, or evaluate one along t.

    landscape-connect a.pt b.pt --arch resnet20 --dataset cifar10 --data-root DIR \\
        --curve bezier --epochs 20 --out ab_curve.pt       # trains the bend; the ends stay fixed
    landscape-connect --eval ab_curve.pt --points 41 --split train,test --out ab_path.h5
    mpirun -n 4 landscape-connect --eval ab_curve.pt ...   # the same file, computed by 4 ranks
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence

from landscape.cli._common import (
    Parser,
    add_data_options,
    add_model_options,
    add_run_options,
    input_file,
    join_negative_values,
    non_negative,
    output_file,
    positive,
    positive_float,
    run_cli,
)
from landscape.cli._declared import declared
from landscape.errors import LandscapeError
from landscape.runtime.parallel import world

PROG = "landscape-connect"
TRAINING = "training the curve"  # the groups of options that apply only to training a curve, or only to --eval
EVALUATION = "evaluation (--eval)"


def build_parser() -> Parser:
    """The argument parser (exposed for documentation and tests)."""
    d = declared("landscape.jobs.connect", "CurveConfig")
    t, o = d.training, d.training.optimizer
    e = declared("landscape.jobs.connect", "PathConfig")
    p = Parser(prog=PROG, description="Train a curve (quadratic Bezier or polygonal chain with one bend) of low "
               "loss between two trained networks, the ends fixed (Garipov et al. 2018); or, with --eval, the "
               "loss and accuracy along the curve and along the straight line, with their barriers.")
    p.add_argument("ends", nargs="*", metavar="CKPT", type=input_file,
                   help="the two ends a and b (with --eval: optional, checked to be the curve's ends)")
    p.add_argument("--eval", metavar="CURVE.pt", type=input_file,
                   help="evaluate this curve file along t instead of training one")
    add_model_options(p)
    m = p.add_argument_group(TRAINING)
    m.add_argument("--curve", dest="kind", choices=declared("landscape.connect.curve", "KINDS"), default=d.kind,
                   help=f"the curve's kind (default {d.kind})")
    m.add_argument("--epochs", type=positive, default=t.epochs, help=f"default {t.epochs}")
    m.add_argument("--lr", type=positive_float, default=o.lr, help=f"learning rate of the bend (default {o.lr}); "
                   "constant for half the epochs, then down to 1%% at 90%%")
    m.add_argument("--optimizer", default=o.name, help="sgd (default), adam or package.module:callable")
    m.add_argument("--momentum", type=float, default=o.momentum)
    m.add_argument("--weight-decay", type=float, default=o.weight_decay)
    m.add_argument("--seed", type=non_negative, default=t.seed, help="seed of t's draws and the batches' order")
    m.add_argument("--run-folder", default=None, metavar="DIR",
                   help="the training run's checkpoints and log.csv (default: --out without .pt, plus .run)")
    m.add_argument("--resume", action="store_true", help="continue an interrupted training run from its run folder")
    add_data_options(p, "train,test", several=True)
    p.set_defaults(dataset=None)  # with --eval: the curve's data
    v = p.add_argument_group(EVALUATION)
    v.add_argument("--points", type=positive, default=e.points,
                   help=f"values of t, evenly spaced in [0, 1] (default {e.points})")
    v.add_argument("--t", default=None, metavar="MIN:MAX:NUM",
                   help="the values of t instead of --points: NUM evenly spaced from MIN to MAX, within [0, 1]")
    v.add_argument("--bn-recompute", type=non_negative, default=None, metavar="N",
                   help="re-estimate BatchNorm statistics from N training batches at every t (default: all of them; "
                   "networks with BatchNorm only)")
    v.add_argument("--repair-stats", action="store_true",
                   help="REPAIR (Jordan et al. 2023): at every t, give each unit of the layers no BatchNorm follows "
                   "the mean and std interpolated from the ends' (statistics from the --bn-recompute batches)")
    p.add_argument("--out", default=None, type=output_file,
                   help=f"the curve file (default {d.out}) or, with --eval, the path file (default {e.out}; rerunning "
                   "the same command resumes it)")
    add_run_options(p, device=d.device, batch_size=f"{t.batch_size} for training the curve; with --eval, "
                    f"{e.batch_size} for evaluating it")
    return p


def _refuse_others(p: Parser, argv: Sequence[str], evaluating: bool) -> None:
    """Options of the other mode (training a curve, or evaluating one) are refused, not ignored."""
    other = TRAINING if evaluating else EVALUATION
    dests = {a.dest: a.option_strings[0] for g in p._action_groups if g.title == other for a in g._group_actions}
    if evaluating:  # the curve file records its architecture, and is read as a checkpoint of ours
        dests.update(arch="--arch", unsafe_pickle="--unsafe-pickle")
    given = sorted(dests[k] for k in p.given(argv) if k in dests)
    if given:
        what = "an option" if len(given) == 1 else "options"
        raise LandscapeError(f"{', '.join(given)} {'is' if len(given) == 1 else 'are'} {what} of "
                             + ("training a curve: --eval evaluates the curve of its file as it is" if evaluating
                                else "--eval (evaluating a curve file along t)"))


def config_from_args(ns: argparse.Namespace, argv: Sequence[str]):
    """The :class:`landscape.jobs.connect.PathConfig` (with ``--eval``) or
    :class:`landscape.jobs.connect.CurveConfig` of parsed options: the one place where flags
    become the job's options."""
    # torch: imported once the arguments are checked (--help never imports it)
    from landscape.connect.training import CurveTraining
    from landscape.jobs import connect as job
    from landscape.training import OptimizerConfig

    command = " ".join([PROG, *argv])
    data = {k: getattr(ns, k) for k in ("data_root", "samples", "sample_seed", "synthetic_shape",
                                        "synthetic_size", "synthetic_seed", "seq_len", "raw_data", "num_classes")}
    if ns.eval:
        return job.PathConfig(curve=ns.eval, ends=tuple(ns.ends), points=ns.points, t=ns.t,
                              out=ns.out or job.PathConfig.out, dataset=ns.dataset, split=ns.split,
                              bn_recompute=ns.bn_recompute, repair_stats=ns.repair_stats,
                              batch_size=ns.batch_size or job.PathConfig.batch_size, device=ns.device,
                              threads=ns.threads, overwrite=ns.overwrite, progress=ns.progress, command=command,
                              **data)
    if len(ns.ends) != 2:
        raise LandscapeError(f"training a curve takes two checkpoints (the ends a and b); {len(ns.ends)} given")
    optimizer = OptimizerConfig(name=ns.optimizer, lr=ns.lr, momentum=ns.momentum, weight_decay=ns.weight_decay,
                                nesterov=False)
    training = CurveTraining(optimizer=optimizer, epochs=ns.epochs, seed=ns.seed,
                             batch_size=ns.batch_size or CurveTraining.batch_size)  # checks them before any work
    return job.CurveConfig(a=ns.ends[0], b=ns.ends[1], arch=ns.arch, out=ns.out or job.CurveConfig.out,
                           kind=ns.kind, training=training, device=ns.device, threads=ns.threads,
                           folder=ns.run_folder, resume=ns.resume, overwrite=ns.overwrite,
                           unsafe_pickle=ns.unsafe_pickle, progress=ns.progress, command=command,
                           dataset=ns.dataset or job.CurveConfig.dataset, **data)


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of ``landscape-connect``; returns the exit code."""
    argv = join_negative_values(list(sys.argv[1:] if argv is None else argv), ("--t",))

    def body() -> int:
        parser = build_parser()
        ns = parser.parse_args(argv)
        _refuse_others(parser, argv, bool(ns.eval))
        cfg = config_from_args(ns, argv)
        from landscape.jobs import connect as job  # torch: imported once the arguments are checked

        if ns.eval:
            comm = world()
            result = job.write_path(cfg, comm)
            if comm.rank == 0:
                done_before = getattr(result.surface, "computed", None) == 0  # a rerun that found every t done
                print(f"{PROG}: {'already complete:' if done_before else 'wrote'} {cfg.out} ({len(result.t)} values "
                      f"of t, splits {','.join(result.by_split)}" + (", REPAIR" if cfg.repair_stats else "") + ")"
                      + ("; nothing computed" if done_before else ""))
                for split, entry in result.by_split.items():
                    for key, what in (("barrier", "barrier (max - mean of the ends)"),
                                      ("chord_barrier", "barrier above the chord (max of L(t) - (1-t) L(a) - t L(b))")):
                        b, e = entry[key], entry[f"err_{key}"]
                        print(f"{PROG}: {split} {what}: curve {b['curve']:.4g}, straight line {b['line']:.4g} "
                              f"(loss); curve {e['curve']:.3g}, straight line {e['line']:.3g} (error %)")
            return 0
        curve, path = job.train(cfg)
        last = curve.meta["history"][-1]["train_loss"]
        print(f"{PROG}: wrote {path} ({curve.kind} curve, {cfg.training.epochs} epochs, last epoch's loss along it "
              f"{last:.4g}; run folder {job.run_folder(cfg)})")
        return 0

    return run_cli(PROG, body, {"ConfigMismatch": "use --overwrite to replace it, or --out for a new file",
                                "DamagedFile": "rerun with --overwrite to start again"})


if __name__ == "__main__":
    sys.exit(main())
