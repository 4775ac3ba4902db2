"""run_cli's handling of the end of a command: once the work is done and said, a late Ctrl-C must
not kill the exit (Python's finalization resets a handled SIGINT to the default, which would end
the process by the signal with no line; an ignored one stays ignored)."""

from __future__ import annotations

import signal

import pytest

from landscape.cli import _common


@pytest.fixture
def sigint_restored():
    before = signal.getsignal(signal.SIGINT)
    yield
    signal.signal(signal.SIGINT, before)


def test_a_finished_command_ignores_a_late_ctrl_c(monkeypatch, sigint_restored):
    monkeypatch.setattr(_common, "program", lambda: "landscape-surf")
    assert _common.run_cli("landscape-surf", lambda: 0) == 0
    assert signal.getsignal(signal.SIGINT) is signal.SIG_IGN


def test_in_a_host_program_the_handler_is_left_alone(monkeypatch, sigint_restored):
    monkeypatch.setattr(_common, "program", lambda: "python")
    assert _common.run_cli("landscape-surf", lambda: 0) == 0
    assert signal.getsignal(signal.SIGINT) is signal.default_int_handler
