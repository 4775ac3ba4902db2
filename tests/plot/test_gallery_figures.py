"""plots/README.md states the figures plots/gallery_figures.py (the last step of plots/make_gallery.sh)
last read from the gallery's files, at their precision."""

from __future__ import annotations

import json
import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
MARK = re.compile(r"(-?[0-9][0-9,]*(?:\.[0-9]+)?)[^0-9<]{0,12}<!--fig:(\w+)-->")
DOC, MEASURED = "plots/README.md", "plots/gallery_figures.json"


def test_figures_match_the_last_measurement():
    text = (ROOT / DOC).read_text()
    figures = json.loads((ROOT / MEASURED).read_text())
    found = MARK.findall(text)
    assert len(found) >= 8, f"{DOC} marks its measured figures with <!--fig:NAME-->"
    for written, name in found:
        assert name in figures, f"{DOC} states {name}, which {MEASURED} does not hold"
        decimals = len(written.split(".")[1]) if "." in written else 0
        expected = round(float(figures[name]), decimals)
        assert float(written.replace(",", "")) == expected, f"{DOC}: {name} is {written}, measured {figures[name]}"


def test_the_machine_and_load_are_stated():
    text = (ROOT / DOC).read_text()
    figures = json.loads((ROOT / MEASURED).read_text())
    assert figures["cpu"] in text and "<!--fig:load_before-->" in text
