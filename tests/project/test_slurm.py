"""docs/performance.md's Slurm recipe, run under a real Slurm (issue 31.11): the test starts Debian's
``slurm-wlm`` on this machine (``slurmctld`` and ``slurmd``, ``auth/none``, every file and port its
own), submits the page's batch script as written (two ranks of one thread, a 3x3 grid: the sizes
cut as the docs runner cuts them) and checks that the job's surface equals the serial one, with
the script's ``mpirun`` and with the ``srun --mpi=pmi2`` the page offers instead. Skipped, saying
why, where Slurm is not installed, the test is not root (``slurmd`` needs it), mpirun is missing, or
the daemons do not come up."""

from __future__ import annotations

import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
from helpers import find_mpirun, make_cifar10

ROOT = Path(__file__).resolve().parents[2]
PAGE = ROOT / "docs" / "performance.md"
DAEMONS = ("slurmctld", "slurmd")
CLIENTS = ("sbatch", "scontrol", "sinfo")
HANG = 900  # seconds after which a job that has not ended is a hung test, not a slow one


def recipe() -> str:
    """The batch script of performance.md: the here-document that holds ``#SBATCH`` lines."""
    for m in re.finditer(r"^cat > (\S+) <<'(\w+)'\n(.*?)^\2$", PAGE.read_text(), re.S | re.M):
        if "#SBATCH" in m.group(3):
            return m.group(3)
    raise AssertionError("docs/performance.md has no batch script (cat > NAME.sbatch <<'EOF' ... EOF)")


def small(script: str) -> str:
    """The script at the test's size: two ranks of one thread, three points an axis."""
    script = re.sub(r"(#SBATCH --ntasks=)\d+", r"\g<1>2", script)
    script = re.sub(r"(#SBATCH --cpus-per-task=)\d+", r"\g<1>1", script)
    return re.sub(r"(--[xyz]=-?[\d.]+:-?[\d.]+:)\d+", r"\g<1>3", script)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def slurm_conf(folder: Path, host: str) -> str:
    ports = free_port(), free_port()
    return "\n".join([
        "ClusterName=landscapetest", f"SlurmctldHost={host}(127.0.0.1)", f"SlurmctldPort={ports[0]}",
        f"SlurmdPort={ports[1]}", "AuthType=auth/none", "CredType=cred/none", "SlurmUser=root", "SlurmdUser=root",
        f"StateSaveLocation={folder}/state", f"SlurmdSpoolDir={folder}/spool",
        f"SlurmctldPidFile={folder}/slurmctld.pid", f"SlurmdPidFile={folder}/slurmd.pid",
        f"SlurmctldLogFile={folder}/slurmctld.log", f"SlurmdLogFile={folder}/slurmd.log",
        "ProctrackType=proctrack/linuxproc", "TaskPlugin=task/none", "SelectType=select/cons_tres",
        "SelectTypeParameters=CR_CPU", "MpiDefault=none", "ReturnToService=2", "JobCompType=jobcomp/none",
        "AccountingStorageType=accounting_storage/none", "PlugStackConfig=/dev/null",
        f"NodeName={host} NodeAddr=127.0.0.1 CPUs={os.cpu_count() or 1} State=UNKNOWN",
        "PartitionName=test Nodes=ALL Default=YES MaxTime=INFINITE State=UP", ""])


def _stop(folder: Path) -> None:
    """End the daemons this test started, by the process ids they wrote."""
    for name in reversed(DAEMONS):
        pid_file = folder / f"{name}.pid"
        if pid_file.exists():
            try:
                os.kill(int(pid_file.read_text().split()[0]), signal.SIGTERM)
            except (ProcessLookupError, ValueError):
                pass


@pytest.fixture(scope="module")
def cluster(tmp_path_factory):
    """A one-node Slurm of this machine: the environment its client commands need."""
    missing = [n for n in (*DAEMONS, *CLIENTS) if shutil.which(n) is None and not os.path.exists(f"/usr/sbin/{n}")]
    if missing:
        pytest.skip(f"Slurm is not installed ({', '.join(missing)} missing: apt-get install slurm-wlm, as .ci/run "
                    "does)")
    if os.geteuid() != 0:
        pytest.skip("slurmd runs jobs as their users and needs root: run the slow suite as root (as .ci/run does)")
    if find_mpirun() is None:
        pytest.skip("no mpirun: pip install -e '.[mpi]'")
    folder = tmp_path_factory.mktemp("slurm")
    for sub in ("state", "spool"):
        (folder / sub).mkdir()
    host = socket.gethostname().split(".")[0]
    conf = folder / "slurm.conf"
    conf.write_text(slurm_conf(folder, host))
    env = dict(os.environ, SLURM_CONF=str(conf))
    env["PATH"] = os.pathsep.join([str(Path(sys.executable).parent), str(Path(find_mpirun()).parent), env["PATH"]])
    for k in [k for k in env if k.startswith(("SLURM_JOB", "SLURM_STEP", "PMI_", "PMIX_"))]:
        env.pop(k)  # run from inside another allocation: not this cluster's
    try:
        for name in DAEMONS:
            exe = shutil.which(name) or f"/usr/sbin/{name}"
            proc = subprocess.run([exe, "-f", str(conf)], env=env, capture_output=True, text=True, timeout=60)
            if proc.returncode:
                pytest.skip(f"{name} does not start here: {(proc.stderr or proc.stdout).strip()[-300:]}")
        for _ in range(120):  # the node registers within seconds; a minute without it: Slurm cannot run here
            state = subprocess.run(["sinfo", "-h", "-o", "%t"], env=env, capture_output=True, text=True).stdout.split()
            if state and state[0] in ("idle", "mix", "alloc"):
                break
            time.sleep(0.5)
        else:
            log = (folder / "slurmd.log").read_text()[-500:] if (folder / "slurmd.log").exists() else ""
            pytest.skip(f"the Slurm node did not come up (sinfo: {state}); slurmd.log: {log}")
        yield env
    finally:
        _stop(folder)


def submit(folder: Path, script: str, env: dict) -> str:
    """Submit ``script`` from ``folder``, wait for the job to end; return its log. The job must complete."""
    (folder / "surface.sbatch").write_text(script)
    job = subprocess.run(["sbatch", "--parsable", "surface.sbatch"], cwd=folder, env=env, capture_output=True,
                         text=True, check=True).stdout.strip().split(";")[0]
    deadline = time.monotonic() + HANG
    while True:
        info = subprocess.run(["scontrol", "show", "job", job], env=env, capture_output=True, text=True).stdout
        state = re.search(r"JobState=(\w+)", info)
        if state and state.group(1) not in ("PENDING", "RUNNING", "CONFIGURING", "COMPLETING"):
            break
        assert time.monotonic() < deadline, f"job {job} has not ended in {HANG} s: {info}"
        time.sleep(1)
    logs = list(folder.glob(f"*-{job}.log"))
    log = logs[0].read_text() if logs else ""
    assert state.group(1) == "COMPLETED" and "ExitCode=0:0" in info, f"job {job}: {state.group(1)}\n{info}\n{log}"
    return log


def the_command(script: str) -> list[str]:
    """The landscape-surf command of the script, as a serial run in this process takes it."""
    text = script.replace("\\\n", " ")
    line = next(ln for ln in text.splitlines() if "landscape-surf" in ln)
    words = line.split("landscape-surf", 1)[1].split("#")[0].split()
    return [w.strip('"').replace("$SLURM_CPUS_PER_TASK", "1") for w in words]


@pytest.mark.slow
@pytest.mark.parametrize("launch", ["mpirun", "srun"])
def test_the_slurm_recipe_computes_the_serial_surface(cluster, tmp_path, launch):
    import torch

    from landscape.cli.surf import main as surf
    from landscape.io.surface_file import read_surface
    from landscape.models import build_model

    make_cifar10(tmp_path / "DIR", n_per_batch=8)
    torch.manual_seed(0)
    torch.save(build_model("resnet20").state_dict(), tmp_path / "ckpt.pt")
    script = small(recipe())
    assert script.count("mpirun -n \"$SLURM_NTASKS\" landscape-surf") == 1
    if launch == "srun":  # the page's other launcher
        script = script.replace('mpirun -n "$SLURM_NTASKS" landscape-surf', "srun --mpi=pmi2 landscape-surf")
    log = submit(tmp_path, script, cluster)
    assert "landscape-surf: wrote surface.h5" in log, log
    job = read_surface(tmp_path / "surface.h5")
    assert int(job.attrs["mpi_ranks"]) == 2 and int(job.attrs["threads_per_rank"]) == 1
    args = the_command(script)
    out = args.index("--out")
    args[out + 1] = str(tmp_path / "serial.h5")
    cwd = os.getcwd()
    os.chdir(tmp_path)
    try:
        assert surf([*args, "--no-progress"]) == 0
    finally:
        os.chdir(cwd)
    serial = read_surface(tmp_path / "serial.h5")
    assert int(serial.attrs["mpi_ranks"]) == 1 and job.shape == serial.shape == (3, 3)
    assert set(job.values) == set(serial.values)
    for name, values in serial.values.items():
        np.testing.assert_allclose(job.values[name], values, rtol=1e-6, atol=0, err_msg=name)
