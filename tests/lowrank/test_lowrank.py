"""Low-rank factorization: the factorized network against the network whose weights are replaced
by their truncated SVD (numpy), full rank, the ranks a ratio or an energy gives, parameters and
FLOPs counted by hand, and the checkpoint every command loads without being told its ranks."""

from __future__ import annotations

import math
import re
from fractions import Fraction

import numpy as np
import pytest
import torch
from torch import nn

from landscape.errors import LandscapeError
from landscape.lowrank import LowRank, apply_ranks_, factorize, factorize_layer, ranks
from landscape.models import build_model


class Mixed(nn.Module):
    """Convolutions with a non-square kernel, stride, padding, dilation, a bias or none, a grouped
    one (kept whole), and two linear layers."""

    def __init__(self):
        super().__init__()
        self.c1 = nn.Conv2d(3, 8, (3, 2), stride=2, padding=1, bias=True)
        self.c2 = nn.Conv2d(8, 12, 3, padding=2, dilation=2, bias=False)
        self.grouped = nn.Conv2d(12, 12, 3, padding=1, groups=3)
        self.fc1 = nn.Linear(12 * 4, 20)
        self.fc2 = nn.Linear(20, 5)

    def forward(self, x):
        x = torch.relu(self.c1(x))
        x = torch.relu(self.grouped(torch.relu(self.c2(x))))
        x = nn.functional.adaptive_avg_pool2d(x, 2).flatten(1)
        return self.fc2(torch.relu(self.fc1(x)))


def mixed() -> nn.Module:
    torch.manual_seed(0)
    return Mixed().double()


def svd_rank(w: np.ndarray, ratio: float | None = None, energy: float | None = None) -> int:
    """The rank the issue specifies, computed apart from the library."""
    s = np.linalg.svd(w.reshape(w.shape[0], -1), compute_uv=False)
    if ratio is not None:
        return max(1, math.ceil(Fraction(str(ratio)) * min(w.shape[0], w[0].size)))
    shares = np.cumsum(s ** 2) / np.sum(s ** 2)
    return int(next(i for i, v in enumerate(shares) if v >= energy - 1e-15)) + 1


def truncated(model: nn.Module, ratio: float | None = None, energy: float | None = None) -> tuple[nn.Module, dict]:
    """``model`` with each Linear / ungrouped Conv2d weight replaced by its truncated SVD (numpy)
    where that rank saves weights; and the ranks."""
    import copy

    out, chosen = copy.deepcopy(model), {}
    for name, m in out.named_modules():
        if not isinstance(m, nn.Linear | nn.Conv2d) or getattr(m, "groups", 1) != 1:
            continue
        w = m.weight.detach().numpy()
        rows, cols = w.shape[0], w[0].size
        r = svd_rank(w, ratio, energy)
        if r * (rows + cols) >= rows * cols:
            continue
        u, s, vt = np.linalg.svd(w.reshape(rows, cols), full_matrices=False)
        with torch.no_grad():
            m.weight.copy_(torch.from_numpy(((u[:, :r] * s[:r]) @ vt[:r]).reshape(w.shape)))
        chosen[name] = r
    return out, chosen


@pytest.mark.parametrize("ratio, energy", [(0.5, None), (0.25, None), (0.3, None), (None, 0.9), (None, 0.6)])
def test_the_factorized_network_is_the_network_with_truncated_weights(ratio, energy):
    model = mixed()
    x = torch.randn(6, 3, 16, 16, dtype=torch.float64, generator=torch.Generator().manual_seed(1))
    small = factorize(model, rank_ratio=ratio, energy=energy)
    reference, chosen = truncated(model, ratio, energy)
    assert ranks(small) == chosen and chosen  # the same ranks, and something was factorized
    assert "grouped" not in chosen and isinstance(small.grouped, nn.Conv2d)
    with torch.no_grad():
        assert torch.allclose(small(x), reference(x), rtol=0, atol=1e-5)
        assert not torch.allclose(small(x), model(x), rtol=0, atol=1e-5)  # truncation changed the function
    for name, r in chosen.items():  # stride, padding, dilation and the bias where they belong
        pair, original = small.get_submodule(name), model.get_submodule(name)
        assert isinstance(pair, LowRank) and pair.rank == r
        if isinstance(original, nn.Conv2d):
            assert (pair[0].stride, pair[0].padding, pair[0].dilation, pair[0].kernel_size) == (
                original.stride, original.padding, original.dilation, original.kernel_size)
            assert pair[1].kernel_size == (1, 1) and pair[0].bias is None
        assert (pair[1].bias is None) == (original.bias is None)
    assert model.c1.weight.shape == (8, 3, 3, 2)  # the original is left as it was


def test_full_rank_reproduces_the_network():
    model = mixed()
    x = torch.randn(4, 3, 16, 16, dtype=torch.float64, generator=torch.Generator().manual_seed(2))
    for name in ("c1", "c2", "fc1", "fc2"):
        layer = model.get_submodule(name)
        w = layer.weight
        pair = factorize_layer(layer, min(w.shape[0], w[0].numel()))
        inputs = x if name == "c1" else torch.randn(4, *((8, 8, 8) if name == "c2" else (w.shape[1],)),
                                                    dtype=torch.float64)
        with torch.no_grad():
            assert torch.allclose(pair(inputs), layer(inputs), rtol=0, atol=1e-10), name
    same = factorize(model, rank_ratio=1.0)  # no rank saves weights at full rank: nothing changes
    assert ranks(same) == {}
    with torch.no_grad():
        assert torch.equal(same(x), model(x))


def test_parameters_and_flops_counted_exactly():
    from landscape.prune import count

    model = build_model("digits_cnn", num_classes=10, in_channels=1)
    small = factorize(model, rank_ratio=0.5)
    # by hand: digits_cnn's convs 1->16, 16->32 (3x3, 8x8 maps), 32->32 (3x3, 4x4 maps), linear 32->10
    r = {"features.0": 5, "features.3": 16, "features.7": 16, "fc": 5}  # ceil(0.5 * min(out, in*k*k))
    assert ranks(small) == r
    params = (r["features.0"] * 9 + 16 * r["features.0"] + r["features.3"] * 144 + 32 * r["features.3"]
              + r["features.7"] * 288 + 32 * r["features.7"] + r["fc"] * 32 + 10 * r["fc"])
    flops = (64 * (r["features.0"] * 9 + 16 * r["features.0"]) + 64 * (r["features.3"] * 144 + 32 * r["features.3"])
             + 16 * (r["features.7"] * 288 + 32 * r["features.7"]) + r["fc"] * 32 + 10 * r["fc"])
    assert count(small, (1, 8, 8)) == (flops, params) == (270354, 8271)
    assert sum(p.numel() for n, p in small.named_parameters() if n.endswith("weight") and p.dim() > 1) == params


def test_apply_ranks_shapes_a_fresh_network_for_the_state_dict():
    model = build_model("digits_cnn", num_classes=10, in_channels=1)
    small = factorize(model, energy=0.8)
    fresh = apply_ranks_(build_model("digits_cnn", num_classes=10, in_channels=1), ranks(small))
    fresh.load_state_dict(small.state_dict())  # strict: every name and shape fits
    with pytest.raises(LandscapeError, match="not a Linear or Conv2d layer"):
        apply_ranks_(build_model("digits_cnn"), {"features.1": 3})
    with pytest.raises(LandscapeError, match="does not fit"):
        apply_ranks_(build_model("digits_cnn"), {"fc": 40})


@pytest.mark.parametrize("kw, match", [(dict(rank_ratio=0.0), r"`rank_ratio` must be in \(0, 1\]"),
                                       (dict(rank_ratio=1.5), "`rank_ratio`"), (dict(energy=-1), "`energy`"),
                                       (dict(), "give one of"), (dict(rank_ratio=0.5, energy=0.5), "give one of")])
def test_bad_ratios_are_one_line_errors(kw, match):
    with pytest.raises(LandscapeError, match=match):
        factorize(mixed(), **kw)
    with pytest.raises(LandscapeError, match="factorized already"):
        factorize(factorize(mixed(), rank_ratio=0.5), rank_ratio=0.5)


# --- the checkpoint through every command -----------------------------------------------------


def test_every_command_loads_a_low_rank_checkpoint_without_being_told_its_ranks(tmp_path, capsys, digits_ckpt):
    from landscape.cli.compare import main as compare
    from landscape.cli.lowrank import main as lowrank
    from landscape.cli.prune import main as prune
    from landscape.cli.surf import main as surf
    from landscape.cli.train import main as train

    out = str(tmp_path / "lr.pt")
    assert lowrank([digits_ckpt, "--arch", "digits_cnn", "--in-channels", "1", "--rank-ratio", "0.5",
                    "--out", out]) == 0
    said = capsys.readouterr().out
    assert "4 layers factorized" in said and "features.3 16" in said
    saved = torch.load(out, weights_only=True)
    assert saved["lowrank"]["ranks"] == {"features.0": 5, "features.3": 16, "features.7": 16, "fc": 5}
    assert (saved["lowrank"]["flops"], saved["lowrank"]["params"]) == (270354, 8271)

    assert prune(["--model", out, "--arch", "digits_cnn", "--count"]) == 0
    assert "270,354 FLOPs (2.7e5), 8,271 params" in capsys.readouterr().out
    assert surf(["--model", out, "--arch", "digits_cnn", "--x=-1:1:3", "--samples", "64", "--batch-size", "64",
                 "--no-progress", "--out", str(tmp_path / "s.h5")]) == 0
    run = tmp_path / "retrained"
    assert train(["--init-from", out, "--arch", "digits_cnn", "--dataset", "digits", "--lr", "0.001", "--epochs",
                  "1", "--subset", "200", "--batch-size", "64", "--no-progress", "--out", str(run)]) == 0
    retrained = torch.load(run / "model_1.pt", weights_only=True)
    assert retrained["lowrank"]["ranks"] == saved["lowrank"]["ranks"]
    assert set(retrained["state_dict"]) == set(saved["state_dict"])
    capsys.readouterr()
    # beside the network it was factorized from (other tensors, the same architecture)
    assert compare([digits_ckpt, out, str(run / "model_1.pt"), "--arch", "digits_cnn", "--samples", "100",
                    "--measures", "avg_filter", "--mc-samples", "2", "--batch-size", "256", "--no-plot",
                    "--out", str(tmp_path / "cmp")]) == 0
    table = (tmp_path / "cmp" / "compare.md").read_text()
    assert len(re.findall(r"^\| [123] \|", table, re.M)) == 3 and "low-rank 0.5, retrained" in table
    torch.save(build_model("mlp", num_classes=10, in_channels=1).state_dict(), tmp_path / "mlp.pt")
    assert compare([out, str(tmp_path / "mlp.pt"), "--arch", "digits_cnn", "--no-plot",
                    "--out", str(tmp_path / "cmp2")]) == 2


@pytest.mark.parametrize("args, message", [
    (["--rank-ratio", "0"], "--rank-ratio must be in (0, 1]"),
    (["--rank-ratio", "1.5"], "--rank-ratio must be in (0, 1]"),
    (["--energy", "nan"], "--energy must be in (0, 1]"),
    (["--rank-ratio", "1"], "no layer was factorized"),
    (["--rank-ratio", "0.5", "--energy", "0.5"], "not allowed with"),
])
def test_bad_lowrank_commands_are_one_line_exit_2(tmp_path, capsys, digits_ckpt, args, message):
    from landscape.cli.lowrank import main as lowrank

    out = tmp_path / "lr.pt"
    assert lowrank([digits_ckpt, "--arch", "digits_cnn", "--in-channels", "1", *args, "--out", str(out)]) == 2
    err = capsys.readouterr().err
    assert err.startswith("landscape-lowrank: error:") and message in err and err.count("\n") == 1
    assert not out.exists()


def test_the_job_runs_at_the_commands_thread_count_and_restores_the_callers(tmp_path, digits_ckpt, monkeypatch):
    from landscape.jobs import lowrank as job
    from landscape.jobs.network import ModelSpec

    seen, real = [], job.factorize
    monkeypatch.setattr(job, "factorize", lambda *a, **kw: (seen.append(torch.get_num_threads()), real(*a, **kw))[1])
    outer = torch.get_num_threads()
    torch.set_num_threads(2)  # the caller's count, which the job's own (1) must replace and then restore
    before = torch.get_num_threads()
    cfg = job.LowRankConfig(ModelSpec("digits_cnn", digits_ckpt, in_channels=1), str(tmp_path / "l.pt"), rank_ratio=0.5,
                              threads=1)
    try:
        job.factorize_checkpoint(cfg)
    finally:
        after = torch.get_num_threads()
        torch.set_num_threads(outer)
    assert seen == [1] and after == before == 2
