"""README.md and plots/README.md state the figures their scripts last measured, at their precision:
benchmarks/readme_figures.py (README.md) and plots/gallery_figures.py, which plots/make_gallery.sh
runs (plots/README.md)."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
MARK = re.compile(r"(-?[0-9][0-9,]*(?:\.[0-9]+)?)[^0-9<]{0,12}<!--fig:(\w+)-->")
DOCS = [("README.md", "benchmarks/readme_figures.json"), ("plots/README.md", "plots/gallery_figures.json")]


@pytest.mark.parametrize("doc, measured", DOCS)
def test_figures_match_the_last_measurement(doc, measured):
    text = (ROOT / doc).read_text()
    figures = json.loads((ROOT / measured).read_text())
    found = MARK.findall(text)
    assert len(found) >= 8, f"{doc} marks its measured figures with <!--fig:NAME-->"
    for written, name in found:
        assert name in figures, f"{doc} states {name}, which {measured} does not hold"
        decimals = len(written.split(".")[1]) if "." in written else 0
        expected = round(float(figures[name]), decimals)
        assert float(written.replace(",", "")) == expected, f"{doc}: {name} is {written}, measured {figures[name]}"


@pytest.mark.parametrize("doc, measured", DOCS)
def test_the_machine_and_load_are_stated(doc, measured):
    text = (ROOT / doc).read_text()
    figures = json.loads((ROOT / measured).read_text())
    assert figures["cpu"] in text and "<!--fig:load_before-->" in text
