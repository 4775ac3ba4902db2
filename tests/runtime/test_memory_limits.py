"""What may still be allocated, and refusing what cannot fit before allocating it (issue 32, part 6)."""

from __future__ import annotations

import pytest

from landscape.errors import LandscapeError
from landscape.runtime import memory


def test_human_sizes():
    assert memory.human(512) == "512 bytes"
    assert memory.human(1_500_000) == "1.5 MB"
    assert memory.human(12.8e12) == "12.8 TB"
    assert memory.human(4e21) == "4e+03 EB"


def test_available_is_at_most_what_the_machine_has_free():
    with open("/proc/meminfo") as f:
        free = next(int(line.split()[1]) * 1024 for line in f if line.startswith("MemAvailable"))
    got = memory.available_bytes()
    assert got is not None and 0 < got <= free * 1.1  # it changes between the two reads


def test_check_fits_refuses_only_beyond_what_is_available(monkeypatch):
    monkeypatch.setattr(memory, "available_bytes", lambda: 10**9)
    memory.check_fits(10**9, "the data")
    with pytest.raises(LandscapeError, match=r"^out of memory: the data would take 1.5 GB; this machine has 1 GB"):
        memory.check_fits(1.5e9, "the data")
    monkeypatch.setattr(memory, "available_bytes", lambda: None)
    memory.check_fits(10**30, "the data")  # unknown: nothing refused (an allocation that fails is still one line)
