"""A full disk ends a command in one line and leaves no temporary behind; what was written before
stays, and the run goes on once there is space again."""

from __future__ import annotations

import errno
import os

import pytest
from helpers import assert_one_line

SURF = ["--arch", "digits_cnn", "--dataset", "digits", "--samples", "60", "--batch-size", "64", "--no-progress",
        "--threads", "1"]


def _full_disk(monkeypatch, when=lambda name: True) -> list[str]:
    """Every write whose file's name passes ``when`` writes a little, then finds the disk full."""
    from landscape.io import files

    real, failed = files._write_all if hasattr(files, "_write_all") else None, []

    def write_all(fd, data):
        name = os.path.basename(os.readlink(f"/proc/self/fd/{fd}"))
        if when(name):
            os.write(fd, bytes(memoryview(data)[:10]))
            failed.append(name)
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
        real(fd, data)

    monkeypatch.setattr(files, "_write_all", write_all, raising=False)
    return failed


@pytest.mark.parametrize("full", ["surface", "everything"])
def test_a_full_disk_ends_surf_in_one_line_without_temporaries(tmp_path, digits_ckpt, monkeypatch, capsys, full):
    from landscape.cli.surf import main

    out = tmp_path / "s.h5"
    # "surface": the directions fit, the surface's rewrite does not; "everything": 0 bytes free
    failed = _full_disk(monkeypatch, (lambda n: ".s.h5.tmp" in n) if full == "surface" else (lambda n: True))
    assert main(["--model", digits_ckpt, *SURF, "--x=-1:1:3", "--out", str(out)]) == 2
    assert_one_line(capsys.readouterr().err, "landscape-surf", "No space left on device")
    assert failed and not out.exists()
    assert not [p.name for p in tmp_path.iterdir() if ".tmp" in p.name]


def test_a_full_disk_ends_training_in_one_line_without_temporaries(tmp_path, monkeypatch, capsys):
    from landscape.cli.train import main

    out = tmp_path / "run"
    failed = _full_disk(monkeypatch, lambda n: n.startswith(".model_1.pt.tmp"))
    argv = ["--arch", "mlp", "--dataset", "digits", "--epochs", "2", "--save-every", "1", "--subset", "100",
            "--no-progress", "--threads", "1", "--out", str(out)]
    assert main(argv) == 2
    assert_one_line(capsys.readouterr().err, "landscape-train", "model_1.pt", "No space left on device")
    assert failed and not [p.name for p in out.iterdir() if ".tmp" in p.name]
    assert (out / "model_0.pt").exists()  # what was written before stays
    monkeypatch.undo()
    assert main([*argv, "--resume"]) == 0  # and the run goes on once there is space again
