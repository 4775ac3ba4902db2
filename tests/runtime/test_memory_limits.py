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


def _group(folder, files: dict) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    for name, text in files.items():
        (folder / name).write_text(text)


def test_a_control_groups_room_is_the_tightest_of_it_and_the_groups_above(tmp_path):
    # cgroup v2: the job's group allows 8 GB with 3 GB used; the group above it 4 GB with 2 GB used
    (tmp_path / "self").write_text("0::/slurm/job_7\n")
    _group(tmp_path / "v2" / "slurm", {"memory.max": "4000000000\n", "memory.current": "2000000000\n"})
    _group(tmp_path / "v2" / "slurm" / "job_7", {"memory.max": "8000000000\n", "memory.current": "3000000000\n"})
    _group(tmp_path / "v2", {"memory.max": "max\n", "memory.current": "9\n"})  # the root: no limit
    assert memory._cgroup_room(str(tmp_path / "self"), str(tmp_path / "v2")) == 2_000_000_000
    # cgroup v1: the memory controller's own hierarchy; a group at its limit leaves nothing
    (tmp_path / "self1").write_text("4:cpu,cpuacct:/docker/a\n3:memory:/docker/a\n")
    _group(tmp_path / "v1" / "memory" / "docker" / "a",
           {"memory.limit_in_bytes": "1000\n", "memory.usage_in_bytes": "1200\n"})
    assert memory._cgroup_room(str(tmp_path / "self1"), str(tmp_path / "v1")) == 0
    # no memory controller, or no limit anywhere: None (the machine's MemAvailable decides)
    (tmp_path / "self2").write_text("4:cpu:/x\n")
    assert memory._cgroup_room(str(tmp_path / "self2"), str(tmp_path / "v1")) is None
    (tmp_path / "self3").write_text("0::/\n")
    assert memory._cgroup_room(str(tmp_path / "self3"), str(tmp_path / "v2")) is None
    assert memory._cgroup_room(str(tmp_path / "missing"), str(tmp_path / "v2")) is None


def test_available_is_at_most_the_control_groups_room(monkeypatch):
    monkeypatch.setattr(memory, "_cgroup_room", lambda: 12345)
    assert memory.available_bytes() == 12345
