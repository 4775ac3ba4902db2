"""benchmarks/device_check.sh: runnable everywhere; without CUDA it says so and does nothing."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest
import torch

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
ENV = {**os.environ, "PYTHONPATH": ROOT, "OMP_NUM_THREADS": "1", "PYTHON": sys.executable}


@pytest.mark.skipif(torch.cuda.is_available(), reason="this machine has CUDA: the script would run the checks")
def test_without_cuda_the_script_says_so_and_exits_cleanly():
    proc = subprocess.run(["bash", os.path.join(ROOT, "benchmarks", "device_check.sh")], capture_output=True,
                          text=True, env=ENV, timeout=300)
    assert proc.returncode == 0, proc.stderr
    assert "no CUDA device" in proc.stdout


@pytest.mark.slow
def test_the_checks_run_on_the_cpu_at_tiny_sizes(tmp_path):
    """The code paths of the GPU checks, CPU against CPU: a check that cannot run here fails here."""
    out = tmp_path / "rows.json"
    proc = subprocess.run([sys.executable, os.path.join(ROOT, "benchmarks", "device_check.py"), "--device", "cpu",
                           "--small", "--checks", "surface,bf16,hessian,big", "--json", str(out)],
                          capture_output=True, text=True, env=ENV, timeout=300)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    rows = json.loads(out.read_text())
    assert len(rows) == 4 and not any(r["ok"] is False for r in rows)
    assert "| check | result | pass |" in proc.stdout
