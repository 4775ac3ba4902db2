"""``landscape-train``: train a zoo network and save the checkpoints the landscape tools read.

    landscape-train --arch resnet56 --dataset cifar10 --data-root DIR --optimizer sgd --lr 0.1 \\
        --batch-size 128 --weight-decay 5e-4 --epochs 300 --save-every 10 \\
        --out runs/resnet56_sgd_bs128
    landscape-train --arch mlp --dataset digits --epochs 20 --lr 0.05 --out runs/mlp_digits
    landscape-train --arch digits_cnn --dataset digits --sam 0.05 --out runs/sam       # SAM (--sam-adaptive: ASAM)
    landscape-train --arch digits_cnn --dataset digits --teacher big.pt --teacher-arch resnet20 --out runs/kd
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence

from landscape.cli._common import (
    Parser,
    add_model_options,
    add_run_options,
    input_file,
    non_negative,
    output_folder,
    positive,
    run_cli,
)
from landscape.cli._declared import declared, declared_names

PROG = "landscape-train"


def _milestones(text: str) -> list[int]:
    if text.strip().lower() in ("none", ""):
        return []  # a constant rate
    try:
        marks = [int(t) for t in text.replace(" ", "").split(",") if t]
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected comma-separated epochs, got {text!r}") from None
    return sorted(set(marks))


class _Defaults:
    """landscape-train's flags' defaults (``TrainConfig().args()``) read from the library's source,
    torch not imported: each flag's place in a TrainConfig (``FLAGS``); a part that is off by default
    (quantized training, distillation) gives the defaults of its own class."""

    def __getitem__(self, flag: str):
        obj = declared("landscape.jobs.train", "TrainConfig")
        *parts, name = declared("landscape.jobs.train", "FLAGS")[flag].split(".")
        for part in parts:
            obj = getattr(obj, part)
            if obj is None:
                obj = {"quant": declared("landscape.quant.config", "QuantConfig"),
                       "teacher": declared("landscape.jobs.train", "Teacher")}[part]
        return getattr(obj, name)


def build_parser() -> argparse.ArgumentParser:
    """The argument parser (exposed for documentation and tests)."""
    d = _Defaults()
    p = Parser(
        prog=PROG,
        description="Train a network of the model zoo (or package.module:callable) and save "
        "model_0.pt, model_E.pt every --save-every epochs and the last one, and log.csv.",
    )
    g = p.add_argument_group("model and data")
    add_model_options(p, arch_required=True, group=g)
    g.add_argument("--list-archs", action="store_true", help="print the zoo's architectures and exit")
    g.add_argument("--init-from", metavar="CKPT", default=None, type=input_file,
                   help="start from this checkpoint's weights (a pruned one: with its widths) instead of "
                   "a fresh initialization; the rate then stays constant unless --milestones is given")
    g.add_argument("--plan", default=None, metavar="PRESET|LAYER=FRACTION,...",
                   help="train a pruned architecture from scratch (the pruning paper's scratch-train rows): a "
                   "preset such as resnet56-B (landscape-prune --list-presets) or layer=fraction pairs")
    g.add_argument("--dataset", default=d["dataset"],
                   help="cifar10, cifar100, mnist, digits, synthetic or package.module:callable "
                   f"(default {d['dataset']})")
    g.add_argument("--data-root", default=None,
                   help="folder with cifar-10-batches-py / cifar-100-python / the MNIST IDX files")
    g.add_argument("--raw-data", action="store_true", help="no per-channel normalization")
    aug = g.add_mutually_exclusive_group()
    aug.add_argument("--no-aug", dest="augment", action="store_false", default=None,
                     help="no random crop/flip (default: on for CIFAR, off otherwise)")
    aug.add_argument("--aug", dest="augment", action="store_true",
                     help="random crop (4-pixel padding) and horizontal flip")
    g.add_argument("--label-noise", type=float, default=0.0, metavar="P",
                   help="replace each training label by a random class with probability P "
                   "(recorded in OUT/label_noise.npz)")
    g.add_argument("--subset", type=positive, default=None, metavar="N",
                   help="a fixed random N-sample subset of each split, for quick runs")
    g.add_argument("--synthetic-size", type=positive, default=d["synthetic_size"],
                   help=f"samples per split of --dataset synthetic (default {d['synthetic_size']})")

    o = p.add_argument_group("optimization")
    o.add_argument("--optimizer", default=d["optimizer"],
                   help="sgd (default), adam, or package.module:callable(params, config)")
    o.add_argument("--lr", type=float, default=d["lr"], help=f"learning rate (default {d['lr']})")
    o.add_argument("--momentum", type=float, default=d["momentum"])
    o.add_argument("--no-nesterov", dest="nesterov", action="store_false",
                   help="plain momentum instead of Nesterov's (the original used Nesterov)")
    o.add_argument("--weight-decay", type=float, default=d["weight_decay"],
                   help=f"(default {d['weight_decay']})")
    o.add_argument("--epochs", type=positive, default=d["epochs"])
    o.add_argument("--lr-decay", type=float, default=d["lr_decay"],
                   help="factor applied at each milestone (default 0.1)")
    o.add_argument("--milestones", type=_milestones, default=None, metavar="E1,E2,...|none",
                   help="epochs after which the rate decays (default: 50%%, 75%%, 11/12 of "
                   "--epochs, i.e. 150,225,275 of 300)")
    o.add_argument("--loss", choices=declared_names("landscape.evaluation.losses", "LOSSES"), default=d["loss"])
    o.add_argument("--init", choices=declared("landscape.jobs.train", "INITS"), default=d["init"],
                   help="original: the loss-landscape tool's initialization; auto (default): "
                   "original for networks with BatchNorm, PyTorch's default otherwise")
    o.add_argument("--seed", type=non_negative, default=d["seed"])

    # -- sharpness-aware minimization and distillation
    s = p.add_argument_group("sharpness-aware minimization and distillation")
    s.add_argument("--sam", type=float, default=None, metavar="RHO",
                   help="SAM (Foret et al., ICLR'21): every step takes the gradient at w + RHO g/||g|| and the "
                   "optimizer steps w with it (0.05 is the paper's usual radius)")
    s.add_argument("--sam-adaptive", action="store_true",
                   help="ASAM (Kwon et al., ICML'21): the perturbation scaled elementwise by |w| + 0.01 (biases "
                   "unscaled); its radius is larger (the paper's 0.5 to 2)")
    s.add_argument("--teacher", metavar="T.pt", default=None,
                   help="knowledge distillation (Hinton et al., 2015) from this checkpoint's network: the loss is "
                   "A*T^2*KL(softmax(t/T) || softmax(s/T)) + (1-A)*CE(s, y)")
    s.add_argument("--teacher-arch", default=None, metavar="ARCH",
                   help="the teacher's architecture (default: --arch)")
    s.add_argument("--kd-temperature", type=float, default=d["kd_temperature"], metavar="T",
                   help=f"the distillation temperature (default {d['kd_temperature']:g})")
    s.add_argument("--kd-alpha", type=float, default=d["kd_alpha"], metavar="A",
                   help=f"the weight of the teacher's soft targets, in [0, 1] (default {d['kd_alpha']:g})")

    # -- quantized training (landscape.quant; Li et al., NIPS'17)
    q = p.add_argument_group("quantized training")
    q.add_argument("--quant", choices=["bc", "sr", "r"], default=None,
                   help="train with quantized conv/linear weights: bc (BinaryConnect: full-precision "
                   "weights kept, the network runs with their quantized copy), sr (stochastic rounding) "
                   "or r (rounding) of the weights themselves; biases and BatchNorm stay full precision")
    q.add_argument("--bits", type=int, choices=range(1, 9), default=d["bits"], metavar="1..8",
                   help="2**bits levels per layer, symmetric about 0 (default 1: binary)")
    q.add_argument("--big-batch", type=positive, default=d["big_batch"], metavar="K",
                   help="train with batches of K x --batch-size (the paper's big-batch SR; recorded in "
                   "the checkpoints as big_batch and effective_batch_size)")
    q.add_argument("--quant-scale", default=d["quant_scale"], metavar="he|std|max|mean|X",
                   help="each layer's outermost level R: he (default: the grid with He's variance "
                   "2/fan_in; binary +-sqrt(2/fan_in)), from the initial weights std (the grid with their "
                   "variance), max (max |w|) or mean (mean |w|), or the number X for every layer")
    q.add_argument("--quant-keep", choices=["none", "first", "last", "first,last"], default=d["quant_keep"],
                   metavar="none|first|last|first,last",
                   help="keep the first and/or last conv/linear layer in full precision (default none)")
    q.add_argument("--quant-step", choices=["unit", "raw"], default=d["quant_step"],
                   help="unit (default): the optimizer steps each layer's weights divided by its scale "
                   "(binary weights are +-1, as in the paper); raw: the weights as they are")
    # --

    r = p.add_argument_group("run")
    r.add_argument("--out", default=None, type=output_folder,
                   help="run folder (default runs/<arch>_<optimizer>_lr=.._bs=.._wd=..)")
    r.add_argument("--save-every", type=positive, default=d["save_every"])
    r.add_argument("--resume", action="store_true", help="continue the run in --out")
    add_run_options(p, device=d["device"], batch_size=f"{d['batch_size']}: the training batch", group=r)
    r.add_argument("--ngpu", type=positive, default=None, help="GPUs for DataParallel (default all)")
    r.add_argument("--channels-last", action="store_true", help="channels-last memory format")
    r.add_argument("--amp", action="store_true",
                   help="mixed precision: float16 + grad scaling on CUDA, bfloat16 on CPU")
    r.add_argument("--eval-batch-size", type=positive, default=d["eval_batch_size"])
    return p


def config_from_args(ns: argparse.Namespace):
    """The :class:`landscape.jobs.train.TrainConfig` of parsed options: the one place where flags
    become the job's options (a flag not given leaves the option's own default)."""
    from landscape.jobs.train import TrainConfig  # torch: imported once the arguments are checked

    return TrainConfig.from_args(**{k: v for k, v in vars(ns).items() if k != "list_archs" and v is not None})


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of ``landscape-train``; returns the exit code."""
    argv = list(sys.argv[1:] if argv is None else argv)
    if "--list-archs" in argv:
        from landscape.models import list_models  # torch: the zoo's modules define its networks

        print("\n".join(list_models()))
        return 0

    def body() -> int:
        cfg = config_from_args(build_parser().parse_args(argv))
        from landscape.jobs.train import train  # torch: imported once the arguments are checked

        result = train(cfg)
        print(f"{PROG}: {result.out}: epoch {result.epoch}, test accuracy {result.test_accuracy:.2f}%, "
              f"{len(result.checkpoints)} checkpoints")
        return 0

    return run_cli(PROG, body)


if __name__ == "__main__":
    sys.exit(main())
