"""Helpers the tests share: tiny checkpoints and surfaces, small networks and data, the MPI
launcher, readers of our output files. (Fixtures are in conftest.py.)"""

import copy
import math
import os
import pickle
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from torch import nn
from torch.func import functional_call

from landscape.jobs.train import TrainConfig
from landscape.models import build_model

ROOT = Path(__file__).resolve().parents[1]
JOB = str(Path(__file__).with_name("mpi_job.py"))
TIMEOUT = 600  # a hang guard, not a time limit: a job on a loaded 2-core machine may take minutes


def find_mpirun() -> str | None:
    """The launcher next to this Python (the mpich wheel's), else the first one on PATH."""
    here = Path(sys.executable).parent
    for name in ("mpirun", "mpiexec"):
        if (here / name).is_file():
            return str(here / name)
    return shutil.which("mpirun") or shutil.which("mpiexec")


def command(n: int, mode: str, *args: str) -> list[str]:
    prefix = launcher(n) if n > 1 else []
    return [*prefix, sys.executable, JOB, mode, *args]


BYPRODUCTS = ("__pycache__", ".pytest_cache")  # Python's bytecode, pytest's own cache (what --lf reads)


def checkout_changes(root=ROOT) -> set[str] | None:
    """What ``git status`` reports in the checkout ``root`` (untracked and ignored paths, a new
    folder as one entry, and changed tracked files) and its empty folders (which git does not
    report), less :data:`BYPRODUCTS`; None outside a git checkout (an unpacked sdist) or without
    git. conftest.py compares it before and after a test run."""
    try:
        proc = subprocess.run(["git", "--no-optional-locks", "-C", str(root), "status", "--porcelain", "--ignored"],
                              capture_output=True, text=True, timeout=300)
    except (OSError, subprocess.TimeoutExpired):
        return None
    if proc.returncode != 0:
        return None
    lines = [line for line in proc.stdout.splitlines()
             if line and not any(part in BYPRODUCTS for part in line[3:].strip('"/').split("/"))]
    whole = {line[3:].strip('"').rstrip("/") for line in lines if line.endswith("/")}  # reported as one entry
    changes = set(lines)
    for here, folders, files in os.walk(root):
        rel = os.path.relpath(here, root)
        folders[:] = [d for d in folders if d != ".git" and d not in BYPRODUCTS
                      and os.path.normpath(os.path.join(rel, d)) not in whole]
        if not folders and not files and rel != ".":
            changes.add(f"empty folder {rel}/")
    return changes


def assert_one_line(err: str, prog: str, *fragments: str) -> str:
    """``err`` is one line ``PROG: error: ...`` (no traceback) holding every fragment; returns it."""
    lines = err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith(f"{prog}: error:") and "Traceback" not in err, err
    for f in fragments:
        assert f in lines[0], lines[0]
    return lines[0]


def saved_figures(monkeypatch) -> dict:
    """Every matplotlib figure saved from now on, by the base name of its file: what a command drew."""
    from matplotlib.figure import Figure

    saved: dict = {}
    real = Figure.savefig

    def savefig(self, fname, *args, **kwargs):
        saved[os.path.basename(str(fname))] = self
        return real(self, fname, *args, **kwargs)

    monkeypatch.setattr(Figure, "savefig", savefig)
    return saved


def digits_mlp(hidden: int = 8) -> tuple[nn.Module, torch.Tensor, torch.Tensor]:
    """A newcomer's own model: an MLP on 200 flattened digits (seed 0), with its data."""
    from landscape.data.datasets import load_dataset

    torch.manual_seed(0)
    d = load_dataset("digits", split="train")
    X, y = d.x[:200].flatten(1), d.y[:200]
    return nn.Sequential(nn.Linear(64, hidden), nn.Tanh(), nn.Linear(hidden, 10)), X, y


def save_digits_cnn(path, seed: int = 0, scale_first_conv: float = 1.0) -> str:
    """A randomly initialized digits_cnn, with its running statistics set to non-trivial values.

    ``scale_first_conv`` multiplies the first conv (which feeds BatchNorm) and its BN's running
    statistics accordingly: the network computes the same function.
    """
    from landscape.models import build_model

    torch.manual_seed(seed)
    model = build_model("digits_cnn", num_classes=10, in_channels=1)
    g = torch.Generator().manual_seed(seed + 1)
    for m in model.modules():
        if isinstance(m, torch.nn.BatchNorm2d):
            m.running_mean.copy_(0.1 * torch.randn(m.num_features, generator=g))
            m.running_var.copy_(0.5 + torch.rand(m.num_features, generator=g))
    conv, bn = model.features[0], model.features[1]
    with torch.no_grad():
        conv.weight.mul_(scale_first_conv)
        bn.running_mean.mul_(scale_first_conv)
        bn.running_var.mul_(scale_first_conv**2)
    torch.save(model.state_dict(), path)
    return str(path)


def make_surface(coords, values: dict, attrs: dict | None = None):
    """A surface from arrays already in the file's meshgrid order ([j, i] at (x[i], y[j])), every
    finite point marked done."""
    import numpy as np

    from landscape.io.surface_file import new_surface

    s = new_surface(coords, list(values), attrs or {})
    for name, v in values.items():
        s.values[name] = np.asarray(v, dtype=float)
        s.done[name] = np.isfinite(s.values[name])
    return s


def has_mpi4py() -> bool:
    try:
        import mpi4py  # noqa: F401
    except ImportError:
        return False
    return True


MPIRUN = find_mpirun()


def launcher(n: int) -> list[str]:
    """``mpirun -n N``, plus what Open MPI needs to oversubscribe (mpich needs nothing)."""
    cmd = [MPIRUN, "-n", str(n)]
    version = subprocess.run([MPIRUN, "--version"], capture_output=True, text=True).stdout
    if "Open MPI" in version or "OpenRTE" in version:
        cmd.append("--oversubscribe")
    return cmd


def job_env() -> dict[str, str]:
    """One thread per rank, the repository importable, no MPI variables of an outer launcher."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PMI_", "PMIX_", "OMPI_"))}
    env.pop("MPI_LOCALNRANKS", None)
    env.update(OMP_NUM_THREADS="1", MKL_NUM_THREADS="1", PYTHONPATH=ROOT,
               OMPI_ALLOW_RUN_AS_ROOT="1", OMPI_ALLOW_RUN_AS_ROOT_CONFIRM="1")
    return env


def run_command(ranks: int, module: str, *args) -> subprocess.CompletedProcess:
    """``python -m landscape.cli.MODULE ARGS`` on ``ranks`` MPI ranks (1: no launcher), waited for;
    the test is skipped where mpi4py or a launcher is missing."""
    if ranks > 1 and (MPIRUN is None or not has_mpi4py()):
        import pytest

        pytest.skip("needs mpi4py and mpirun")
    prefix = launcher(ranks) if ranks > 1 else []
    return subprocess.run([*prefix, sys.executable, "-m", f"landscape.cli.{module}", *map(str, args)],
                          capture_output=True, text=True, env=job_env(), timeout=TIMEOUT, cwd=ROOT)


def run(n: int, mode: str, *args: str) -> subprocess.CompletedProcess:
    """Run the job on ``n`` ranks (``n == 1``: plain python) and wait for it."""
    return subprocess.run(command(n, mode, *args), capture_output=True, text=True, env=job_env(),
                          timeout=TIMEOUT)


def train_mlp(folder, steps: int = 12, meta: bool = True) -> None:
    """A few SGD steps of the zoo's mlp on random digits-shaped data, saving every step."""
    torch.manual_seed(0)
    model = build_model("mlp", num_classes=10, in_channels=1)
    x, y = torch.randn(64, 1, 8, 8), torch.randint(0, 10, (64,))
    opt = torch.optim.SGD(model.parameters(), lr=0.1)
    for step in range(steps):
        sd = {k: v.detach().clone() for k, v in model.state_dict().items()}
        obj = {"state_dict": sd, "epoch": step, "num_classes": 10, "in_channels": 1} if meta else sd
        torch.save(obj, folder / f"model_{step}.pt")
        opt.zero_grad()
        nn.functional.cross_entropy(model(x), y).backward()
        opt.step()


def read_vts(path) -> tuple:
    """A .vts file read by VTK itself: the grid, its dimensions, its points and its point arrays by name."""
    vtk = pytest.importorskip("vtk", reason="the vtk package is not installed (pip install vtk)")
    from vtk.util.numpy_support import vtk_to_numpy

    reader = vtk.vtkXMLStructuredGridReader()
    reader.SetFileName(str(path))
    reader.Update()
    grid = reader.GetOutput()
    dims = [0, 0, 0]
    grid.GetDimensions(dims)
    data = grid.GetPointData()
    arrays = {data.GetArrayName(i): vtk_to_numpy(data.GetArray(i)) for i in range(data.GetNumberOfArrays())}
    return grid, dims, vtk_to_numpy(grid.GetPoints().GetData()), arrays


def mlp() -> nn.Module:
    """1,269 parameters."""
    torch.manual_seed(0)
    return nn.Sequential(nn.Linear(10, 32), nn.Tanh(), nn.Linear(32, 24), nn.Tanh(), nn.Linear(24, 5))


def mlp_data(n: int = 48) -> tuple[torch.Tensor, torch.Tensor]:
    g = torch.Generator().manual_seed(1)
    return torch.randn(n, 10, generator=g), torch.randint(0, 5, (n,), generator=g)


def convnet() -> nn.Module:
    """A conv net with BatchNorm (non-trivial running statistics), 714 parameters."""
    torch.manual_seed(0)
    net = nn.Sequential(
        nn.Conv2d(2, 6, 3, padding=1), nn.BatchNorm2d(6), nn.ReLU(),
        nn.Conv2d(6, 8, 3, padding=1), nn.BatchNorm2d(8), nn.ReLU(),
        nn.AdaptiveAvgPool2d(2), nn.Flatten(), nn.Linear(32, 4),
    )
    g = torch.Generator().manual_seed(2)
    with torch.no_grad():
        for m in net.modules():
            if isinstance(m, nn.BatchNorm2d):
                m.running_mean.copy_(0.2 * torch.randn(m.num_features, generator=g))
                m.running_var.copy_(0.5 + torch.rand(m.num_features, generator=g))
                m.weight.copy_(1 + 0.3 * torch.randn(m.num_features, generator=g))
                m.bias.copy_(0.1 * torch.randn(m.num_features, generator=g))
    return net


def conv_data(n: int = 24) -> tuple[torch.Tensor, torch.Tensor]:
    g = torch.Generator().manual_seed(3)
    return torch.randn(n, 2, 5, 5, generator=g), torch.randint(0, 4, (n,), generator=g)


def exact_hessian(model: nn.Module, X: torch.Tensor, y: torch.Tensor, names=None) -> np.ndarray:
    """The Hessian of the mean cross-entropy over (X, y) in float64, eval mode, by autograd."""
    m = copy.deepcopy(model).double().eval()
    params = {k: p.detach() for k, p in m.named_parameters()}
    buffers = dict(m.named_buffers())
    keys = list(names or params)
    sizes = [params[k].numel() for k in keys]

    def loss(flat):
        ps = dict(params)
        for k, chunk in zip(keys, flat.split(sizes), strict=True):
            ps[k] = chunk.view_as(params[k])
        return F.cross_entropy(functional_call(m, (ps, buffers), (X.double(),)), y)

    flat0 = torch.cat([params[k].reshape(-1) for k in keys])
    return torch.autograd.functional.hessian(loss, flat0, vectorize=True).numpy()


def randomized(model: nn.Module, seed: int = 0) -> nn.Module:
    """Random weights and non-trivial BatchNorm statistics and affine parameters, eval mode."""
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for m in model.modules():
            if isinstance(m, nn.modules.conv._ConvNd | nn.Linear):
                m.weight.copy_(torch.randn(m.weight.shape, generator=g) / math.sqrt(m.weight[0].numel()))
                if m.bias is not None:
                    m.bias.copy_(0.1 * torch.randn(m.bias.shape, generator=g))
            if isinstance(m, nn.modules.batchnorm._BatchNorm):
                n = m.num_features
                m.running_mean.copy_(0.1 * torch.randn(n, generator=g))
                m.running_var.copy_(0.5 + torch.rand(n, generator=g))
                m.weight.copy_(1 + 0.3 * torch.randn(n, generator=g))
                m.bias.copy_(0.3 * torch.randn(n, generator=g))
    return model.eval()


def cifar_resnet_counts(depth: int, conv1_widths: dict[tuple[int, int], int], classes: int = 10) -> tuple[int, int]:
    """Closed form for the CIFAR ResNets (shortcuts not counted): conv1 of block (stage, j) has
    ``conv1_widths`` filters (default: the stage's width)."""
    n = (depth - 2) // 6
    params = 3 * 16 * 9
    flops = params * 32 * 32
    cin = 16
    for s, w in enumerate((16, 32, 64)):
        hw = (32 >> s) ** 2
        for j in range(n):
            c1 = conv1_widths.get((s, j), w)
            p = 9 * (cin if j == 0 else w) * c1 + 9 * c1 * w
            params += p
            flops += p * hw
        cin = w
    return flops + 64 * classes, params + 64 * classes


RESNET_PLAN = {
    "layer1.0.conv1": 0.5, "layer2.1.conv1": 0.5, "layer3.2.conv1": 0.25,
    # the whole stage-2 residual path, projection included: same indices everywhere
    "layer2.0.shortcut.0": 0.25, "layer2.0.conv2": 0.25, "layer2.1.conv2": 0.25, "layer2.2.conv2": 0.25,
}


def quick(tmp_path, name="run", **kw) -> TrainConfig:
    base = dict(arch="mlp", dataset="digits", epochs=3, lr=0.05, batch_size=64, save_every=2,
                out=str(tmp_path / name), progress=False)
    base.update(kw)
    return TrainConfig.from_args(**base)


def write_cifar_batch(path, data: np.ndarray, labels: list[int], label_key: bytes = b"labels"):
    """A CIFAR python batch: a pickled dict with bytes keys; ``data`` is uint8 (N, 3072), each
    row 1024 red, then 1024 green, then 1024 blue values, each plane row-major (32 x 32)."""
    obj = {b"batch_label": b"training batch", label_key: list(labels),
           b"data": np.ascontiguousarray(data, dtype=np.uint8),
           b"filenames": [f"img_{i}.png".encode() for i in range(len(labels))]}
    if label_key == b"fine_labels":
        obj[b"coarse_labels"] = [lbl // 5 for lbl in labels]
    with open(path, "wb") as f:
        pickle.dump(obj, f, protocol=2)


def make_cifar10(root, n_per_batch: int = 3, skip: str | None = None, seed: int = 0):
    """Write ``root/cifar-10-batches-py`` with five training batches and a test batch."""
    folder = root / "cifar-10-batches-py"
    folder.mkdir(parents=True)
    rng = np.random.default_rng(seed)
    batches = {}
    for name in [f"data_batch_{i}" for i in range(1, 6)] + ["test_batch"]:
        data = rng.integers(0, 256, size=(n_per_batch, 3072), dtype=np.uint8)
        labels = rng.integers(0, 10, size=n_per_batch).tolist()
        batches[name] = (data, labels)
        if name != skip:
            write_cifar_batch(folder / name, data, labels)
    with open(folder / "batches.meta", "wb") as f:
        pickle.dump({b"label_names": [b"airplane"] * 10}, f, protocol=2)
    return folder, batches


def save_checkpoint_of(path, arch: str = "digits_cnn", seed: int = 0, num_classes: int = 10,
                       in_channels: int = 1) -> str:
    """A randomly initialized zoo network as landscape-train records one (a dict with its classes
    and input channels), e.g. a teacher to distill from."""
    torch.manual_seed(seed)
    model = build_model(arch, num_classes=num_classes, in_channels=in_channels)
    torch.save({"state_dict": model.state_dict(), "arch": arch, "num_classes": num_classes,
                "in_channels": in_channels}, path)
    return str(path)


def save_lowrank(path, seed: int = 0, rank_ratio: float = 0.5) -> str:
    """A digits_cnn factorized by landscape-lowrank's job (a checkpoint that records its ranks)."""
    from landscape.jobs.lowrank import LowRankConfig, factorize_checkpoint
    from landscape.jobs.network import ModelSpec

    source = save_checkpoint_of(Path(path).with_suffix(".source.pt"), seed=seed)
    factorize_checkpoint(LowRankConfig(ModelSpec("digits_cnn", source), str(path), rank_ratio=rank_ratio))
    return str(path)
def surf_config(**kw):
    """A :class:`landscape.jobs.surf.SurfConfig` from flat keywords: the fields of
    :class:`landscape.data.datasets.DataSpec` (``dataset``, ``samples``, ``split``, ...) go into its
    ``data``, the rest are the config's own."""
    from dataclasses import fields

    from landscape.data.datasets import DataSpec
    from landscape.jobs.surf import SurfConfig

    names = {f.name for f in fields(DataSpec)}
    return SurfConfig(data=DataSpec(**{k: kw.pop(k) for k in list(kw) if k in names}), **kw)


def assert_round_levels(levels, lo: float, hi: float, about: int, log: bool = False) -> None:
    """``levels`` are round values inside ``[lo, hi]``, about ``about`` of them: on a linear scale
    evenly spaced by 1, 2, 2.5 or 5 times a power of ten, on a log one each a digit (or 1.5, 2.5)
    times a power of ten. Odd values (0.139, 0.0308) fail."""
    import numpy as np

    lv = np.asarray(levels, dtype=float)
    assert len(lv) >= 2 and about / 2.5 <= len(lv) <= about * 2.5, (len(lv), about)
    assert lo * (1 - 1e-9) - 1e-12 <= lv.min() and lv.max() <= hi * (1 + 1e-9) + 1e-12, (lv, lo, hi)
    if log:
        mant = lv / 10.0 ** np.floor(np.log10(lv) + 1e-12)
        assert np.allclose(mant * 10, np.round(mant * 10)), lv  # 1 to 9.9: at most two significant digits
        return
    step = np.diff(lv)
    assert np.allclose(step, step[0]), lv
    m = step[0] / 10.0 ** np.floor(np.log10(step[0]) + 1e-12)
    assert any(np.isclose(m, c) for c in (1, 2, 2.5, 5, 10)), step[0]
    assert np.allclose(lv / step[0], np.round(lv / step[0])), lv  # multiples of the step
