"""Under mpirun every rank meets the same bad input and only rank 0 says it: one line for the job,
exit 2 on every rank (mpirun's version: tests/engine/test_mpi.py, slow)."""

from __future__ import annotations

from landscape.cli import _common
from landscape.errors import LandscapeError


def test_only_rank_zero_reports_bad_input(monkeypatch, capsys):
    monkeypatch.setattr(_common, "join", lambda prog: None)  # the MPI job joined

    def bad_input():
        raise LandscapeError("'missing.pt' does not exist")

    for rank, said in ((0, ["landscape-surf: error: 'missing.pt' does not exist"]), (1, []), (2, [])):
        monkeypatch.setattr(_common, "launcher_rank", lambda rank=rank: rank)
        assert _common.run_cli("landscape-surf", bad_input) == 2
        out, err = capsys.readouterr()
        assert err.splitlines() == said and out == "", rank
