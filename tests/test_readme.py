"""README.md states the figures benchmarks/readme_figures.py last measured, at their precision."""

from __future__ import annotations

import json
import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
MARK = re.compile(r"([0-9][0-9,]*(?:\.[0-9]+)?)[^0-9<]{0,12}<!--fig:(\w+)-->")


def test_readme_figures_match_the_last_measurement():
    text = (ROOT / "README.md").read_text()
    figures = json.loads((ROOT / "benchmarks" / "readme_figures.json").read_text())
    found = MARK.findall(text)
    assert len(found) >= 8, "README.md marks its measured figures with <!--fig:NAME-->"
    for written, name in found:
        assert name in figures, f"README.md states {name}, which readme_figures.py does not measure"
        decimals = len(written.split(".")[1]) if "." in written else 0
        expected = round(float(figures[name]), decimals)
        assert float(written.replace(",", "")) == expected, f"{name}: README says {written}, measured {figures[name]}"


def test_the_machine_and_load_are_stated():
    text = (ROOT / "README.md").read_text()
    figures = json.loads((ROOT / "benchmarks" / "readme_figures.json").read_text())
    assert figures["cpu"] in text and "<!--fig:load_before-->" in text
