"""Golden values: the directions a seed gives, hard-coded once (torch 2.13, x86-64 Linux).

A surface is only reproducible (and a resumed or multi-rank run only accepted) when a seed gives
the same directions on every machine, every MPI rank and every version. These numbers were
computed once, on a model whose weights are exact small fractions (no random initialization,
no transcendental functions), so a change anywhere in the chain -- torch's generator, the order
of the draws, the normalization, the ignore rule -- changes them.

If this test fails after a torch upgrade or on a new machine, the directions of an existing seed
changed: surfaces computed before cannot be resumed or extended with the same seed. Say so in
the release notes, and replace the numbers below by those this test computes now.
"""

from __future__ import annotations

import hashlib
import os
import shutil

import numpy as np
import pytest
import torch
from torch import nn

import landscape as ls
from landscape import prune
from landscape.data.datasets import DataSpec
from landscape.directions.sampling import random_directions
from landscape.io.checkpoint import save_checkpoint
from landscape.io.surface_file import read_surface
from landscape.jobs.surf import SurfConfig, surf
from landscape.models import build_model


def fixed_origin() -> dict[str, torch.Tensor]:
    """A conv, a BatchNorm and a linear layer; every weight a multiple of 1/8 in [-1, 1]."""
    net = nn.Sequential(nn.Conv2d(1, 3, 3), nn.BatchNorm2d(3), nn.ReLU(), nn.Flatten(), nn.Linear(12, 4))
    origin = {}
    for k, (name, p) in enumerate(net.named_parameters()):
        i = torch.arange(p.numel(), dtype=torch.float32)
        origin[name] = (((i * 37 + 11 * k) % 17 - 8) / 8).reshape(p.shape)
    return origin


def fingerprint(directions) -> str:
    """SHA-256 of every direction's tensor names and little-endian float32 bytes, in order
    (written here, not taken from the library, so a change of the library's checksum does not
    hide a change of the directions)."""
    h = hashlib.sha256()
    for d in directions:
        for name, t in d.items():
            h.update(name.encode())
            h.update(t.detach().cpu().numpy().astype("<f4").tobytes())
    return h.hexdigest()


# (first element, last element, sum) of each direction's tensors, computed once.
FILTER_BIASBN_SEED_7 = (
    "6fc9abe580f3b013afd754d4d699228ad2872a528ac6f72c815932e11a1e1823",
    [{"0.weight": (-0.641725480556488, 0.7649637460708618, -0.2604401018470526),
      "4.weight": (-0.11693430691957474, 0.3164222836494446, -0.7334536295384169)},
     {"0.weight": (0.5386256575584412, -0.3042208254337311, 0.8393258973956108),
      "4.weight": (0.4383701682090759, 0.9427628517150879, -3.000863740220666)}],
)
PER_AXIS_SEED_2026 = (  # x: filter norm, biases and BN ignored; y: layer norm, nothing ignored
    "9c3a0b89ca6900e90dbdbba7673cd39c4e69c079758af3e5b1bbc6a589190719",
    [{"0.weight": (-0.18022175133228302, 0.1343528926372528, -4.8963639456778765),
      "4.weight": (-0.49030745029449463, -0.9462635517120361, 0.7409205883741379)},
     {"0.weight": (-0.525637686252594, 0.014671193435788155, -2.009091878309846),
      "0.bias": (0.15153777599334717, 0.4440849721431732, -0.6221415102481842),
      "1.weight": (0.5202717781066895, 0.10279606282711029, 0.623560702370014),
      "1.bias": (0.2806010842323303, -0.6832056641578674, -1.4785311222076416),
      "4.weight": (1.231846809387207, 0.4099487364292145, -3.172343543730676),
      "4.bias": (-0.29502809047698975, -0.6819177269935608, -0.454577699303627)}],
)


@pytest.mark.parametrize("kwargs, golden", [
    (dict(norm="filter", ignore="biasbn", seed=7), FILTER_BIASBN_SEED_7),
    (dict(norm=("filter", "layer"), ignore=("biasbn", "none"), seed=2026), PER_AXIS_SEED_2026),
], ids=["filter-biasbn-seed7", "per-axis-seed2026"])
def test_random_directions_of_a_seed_are_the_golden_ones(kwargs, golden):
    checksum, expected = golden
    dirs = random_directions(fixed_origin(), 2, **kwargs)
    for d, values in zip(dirs, expected, strict=True):
        for name, t in d.items():
            flat = t.flatten().double()
            first, last, total = values.get(name, (0.0, 0.0, 0.0))  # absent: an ignored (zero) tensor
            assert (float(flat[0]), float(flat[-1])) == pytest.approx((first, last), rel=1e-6, abs=1e-12), name
            assert float(flat.sum()) == pytest.approx(total, rel=1e-5, abs=1e-6), name
            if name not in values:
                assert not t.any(), name
    assert fingerprint(dirs) == checksum, (
        "the values agree to 1e-6 but not to the last bit: this machine or version draws or "
        "normalizes in another rounding, and MPI ranks here would refuse each other's directions"
    )


def test_the_generator_underneath_is_the_golden_one():
    """torch's CPU generator itself (the short and the vectorized path): when this fails too, the
    change is torch's, not ours."""
    short = torch.randn(3, generator=torch.Generator().manual_seed(7))
    long = torch.randn(27, generator=torch.Generator().manual_seed(7))[:3]
    np.testing.assert_array_equal(short.numpy(), np.array([-0.1467950940132141, 0.7861412763595581,
                                                           0.9468216300010681], dtype=np.float32))
    np.testing.assert_array_equal(long.numpy(), np.array([-0.8201345205307007, 0.39563116431236267,
                                                          0.8989084959030151], dtype=np.float32))


# ------------------------------------------------------------------ surfaces, bit for bit
# A surface of a seeded digits_cnn (random weights: torch.manual_seed(0)) on the digits test split,
# 5x5 points on [-1, 1]^2 along the directions of seed 3, batches of 64, one thread: the SHA-256 of
# its value arrays (little-endian float64, names sorted), computed once with landscape 0.2.0 (the
# code before the refactoring of issue 27). A refactoring that changes any value by one bit fails.
SURFACE_API = "b28b5ce20c20cf2927fee9d14ef69896fb7edbfe3e846d9dbed498a4a8782545"  # train_loss, train_acc
SURFACE_JOB = "527cd7f2cf6c3c0f7507fc708e1779cc6feb812327c81987910e3be9dd640cab"  # test_loss, test_acc
FIRST_LOSSES = ("0x1.2dbe27e92e59ep+1", "0x1.2a42483357b5dp+1", "0x1.2a594f89a0722p+1")
# The pruning scan of the same network (ratios 0, 0.25, 0.5 of each conv alone), same data and batches:
# the SHA-256 of its loss, then its accuracy array (layer x ratio, float64).
SCAN = "dfb3ea0991ac50f8f650211f82031f80e8aab057de5c469a8136a75c787dc6f9"
# A surface file written by landscape 0.2.0's landscape-surf job with the options of SURFACE_JOB,
# its last 13 points then marked pending: a file of the old code that the new code must resume.
PARTIAL = os.path.join(os.path.dirname(__file__), "data", "surface_0.2.0_partial.h5")


def seeded_digits_cnn():
    torch.manual_seed(0)
    return build_model("digits_cnn", num_classes=10, in_channels=1)


def values_digest(values: dict) -> str:
    h = hashlib.sha256()
    for name in sorted(values):
        h.update(name.encode())
        h.update(np.ascontiguousarray(values[name], dtype="<f8").tobytes())
    return h.hexdigest()


def job_config(model: str, out: str) -> SurfConfig:
    return SurfConfig(model=model, arch="digits_cnn", data=DataSpec(dataset="digits", split="test"),
                      grid=ls.Grid("-1:1:5", "-1:1:5"), directions=ls.Directions(seed=3),
                      evaluation=ls.EvalOptions(loss_fn="crossentropy", device="cpu", batch_size=64, threads=1),
                      output=ls.Output(out, progress=False))


def test_a_surface_is_the_golden_one_bit_for_bit():
    surf = ls.surface(seeded_digits_cnn(), ls.load_dataset("digits", split="test"), ls.Grid((-1, 1, 5), (-1, 1, 5)),
                      directions=ls.Directions(seed=3), evaluation=ls.EvalOptions(batch_size=64, threads=1),
                      output=ls.Output(progress=False))
    assert tuple(float(v).hex() for v in surf.values["train_loss"].ravel()[:3]) == FIRST_LOSSES
    assert values_digest(surf.values) == SURFACE_API


def test_the_command_s_surface_is_the_golden_one_and_resumes_a_file_of_the_old_code(tmp_path):
    ckpt = save_checkpoint(str(tmp_path / "model.pt"), {"state_dict": seeded_digits_cnn().state_dict()})
    fresh = surf(job_config(ckpt, str(tmp_path / "fresh.h5"))).surface
    assert values_digest(fresh.values) == SURFACE_JOB
    old = str(tmp_path / "old.h5")
    shutil.copy(PARTIAL, old)
    before = read_surface(old)
    assert before.completed.sum() == 12  # the file's own points: kept, not recomputed
    resumed = surf(job_config(ckpt, old)).surface
    assert resumed.attrs.get("resumed") and resumed.completed.all()
    assert values_digest(resumed.values) == SURFACE_JOB
    assert values_digest(read_surface(old).values) == SURFACE_JOB


def test_the_pruning_scan_is_the_golden_one_bit_for_bit():
    r = prune.sensitivity(seeded_digits_cnn(), ls.load_dataset("digits", split="test"), [0.0, 0.25, 0.5],
                          evaluation=ls.EvalOptions(batch_size=64, device="cpu", threads=1))
    assert r.layers == ("features.0", "features.3", "features.7")
    h = hashlib.sha256()
    for a in (r.loss, r.accuracy):
        h.update(np.ascontiguousarray(a, dtype="<f8").tobytes())
    assert h.hexdigest() == SCAN
