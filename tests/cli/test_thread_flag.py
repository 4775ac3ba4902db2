"""Every computing command takes --threads (the count the command decides once, at the edge)."""

from __future__ import annotations


def test_every_computing_command_takes_threads():
    from landscape.cli import hessian, markov, prune, surf, train, traj

    for cli in (hessian, markov, prune, surf, train, traj):
        assert any("--threads" in a.option_strings for a in cli.build_parser()._actions), cli.PROG
