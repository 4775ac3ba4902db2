"""A distribution name of our own (issue 31.8): `landscape` on PyPI is an unrelated project, so the
package is distributed as `torch-landscape` (it still imports as `landscape`, its commands are still
`landscape-*`), and every install line a reader meets names it, or is a clone's editable install."""

from __future__ import annotations

import configparser
import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
NAME = "torch-landscape"
# where a user reads install lines: the front door, the docs, --help texts and error messages
READ = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md")), *sorted((ROOT / "landscape").rglob("*.py"))]


def test_setup_names_the_distribution_and_keeps_the_package_and_commands():
    cfg = configparser.ConfigParser()
    cfg.read(ROOT / "setup.cfg")
    assert cfg["metadata"]["name"] == NAME
    assert cfg["options.packages.find"]["include"].split(",")[0].strip() == "landscape"
    scripts = [line.split("=")[0].strip() for line in cfg["options.entry_points"]["console_scripts"].splitlines()
               if line.strip()]
    assert scripts and all(s.startswith("landscape-") for s in scripts)


def test_no_install_line_names_the_other_projects_landscape():
    bare = re.compile(r"(?<![\w.-])landscape\[")  # 'landscape[hf]': the unrelated project on PyPI
    found = [f"{p.relative_to(ROOT)}:{n}" for p in READ for n, line in enumerate(p.read_text().splitlines(), 1)
             if bare.search(line) or re.search(r"pip install\s+['\"]?landscape(?![\w-])", line)]
    assert not found, found


def test_every_pip_install_of_ours_is_the_distribution_or_a_clones_editable_install():
    ours = re.compile(r"pip install\s+(?:-\w+\s+)*['\"]?(?P<what>[^\s'\"]+)")
    for p in READ:
        for n, line in enumerate(p.read_text().splitlines(), 1):
            for m in ours.finditer(line):
                what = m.group("what")
                if what.startswith((".", "-e")) or what.startswith(NAME) or "landscape" not in what:
                    continue  # a clone's `pip install -e .`, ours by name, or another package (torch, mpi4py)
                raise AssertionError(f"{p.relative_to(ROOT)}:{n}: {line.strip()}")
    readme = (ROOT / "README.md").read_text()
    first = re.search(r"^```bash\n(.*?)^```", readme, re.S | re.M).group(1)
    assert f"pip install {NAME}" in first  # the quick start works without a clone
