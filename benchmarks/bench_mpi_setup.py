"""Set-up under MPI: every rank loading model, data and directions itself vs rank 0 broadcasting them.

    mpirun -n 2 python benchmarks/bench_mpi_setup.py      # ResNet-56, a CIFAR-10 folder of 60,000 images

Writes a CIFAR-10 python-pickle folder of random images (the real format and size) and a ResNet-56
checkpoint to a temporary folder, then times, with barriers around each, (1) every rank running
the loaders of landscape-surf's job and (2) rank 0 broadcasting what it loaded (data, state dict,
directions) with ``comm.bcast``. ``landscape`` does (1).
"""

from __future__ import annotations

import os
import pickle
import shutil
import sys
import tempfile
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))

import numpy as np  # noqa: E402
import torch  # noqa: E402
from mpi4py import MPI  # noqa: E402

from landscape.data.datasets import DataSpec  # noqa: E402
from landscape.directions.sampling import random_directions  # noqa: E402
from landscape.io.checkpoint import read_checkpoint  # noqa: E402
from landscape.jobs.network import network  # noqa: E402
from landscape.jobs.surf import SurfConfig  # noqa: E402
from landscape.models import build_model  # noqa: E402
from landscape.space.params import snapshot  # noqa: E402


def write_fixture(folder: str) -> None:
    batches = os.path.join(folder, "cifar-10-batches-py")
    os.makedirs(batches)
    rng = np.random.default_rng(0)
    for name in [f"data_batch_{i}" for i in range(1, 6)] + ["test_batch"]:
        obj = {b"data": rng.integers(0, 256, (10000, 3072), dtype=np.uint8),
               b"labels": rng.integers(0, 10, 10000).tolist()}
        with open(os.path.join(batches, name), "wb") as f:
            pickle.dump(obj, f, protocol=2)
    torch.save(build_model("resnet56").state_dict(), os.path.join(folder, "r56.pt"))


def main() -> int:
    comm = MPI.COMM_WORLD
    folder = comm.bcast(tempfile.mkdtemp() if comm.rank == 0 else None, root=0)
    if comm.rank == 0:
        write_fixture(folder)
    comm.Barrier()
    cfg = SurfConfig(model=os.path.join(folder, "r56.pt"), arch="resnet56", data=DataSpec(dataset="cifar10",
                                                                                       data_root=folder))
    t0 = time.perf_counter()
    data, _ = cfg.data.load()
    model = network(read_checkpoint(cfg.model), cfg.arch, data=data)
    dirs = random_directions(snapshot(model), 2)
    comm.Barrier()
    t_load = time.perf_counter() - t0
    t0 = time.perf_counter()
    payload = (data.x, data.y, model.state_dict(), dirs) if comm.rank == 0 else None
    comm.bcast(payload, root=0)
    comm.Barrier()
    t_bcast = time.perf_counter() - t0
    if comm.rank == 0:
        print(f"{comm.size} ranks, ResNet-56, CIFAR-10 train split ({data.x.numel() * 4 / 2**20:.0f} MiB "
              f"as float32): every rank loads itself {t_load:.2f} s; rank 0 broadcasts {t_bcast:.2f} s "
              f"more (after its own load)")
        shutil.rmtree(folder)
    return 0


if __name__ == "__main__":
    from _report import run_and_report  # writes this script's section of docs/benchmarks.md

    sys.exit(run_and_report(main))
