"""benchmarks/_report.py: a benchmark's output replaces its own section of the page, and only on success."""

from __future__ import annotations

import os
import sys

import pytest

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "..", "benchmarks"))

import _report  # noqa: E402

PAGE = """# Benchmarks

<!-- bench:a -->
old a
<!-- /bench:a -->

Words between the sections stay.

<!-- bench:b -->
old b
<!-- /bench:b -->
"""


def test_a_section_is_replaced_and_the_rest_kept(tmp_path):
    doc = tmp_path / "benchmarks.md"
    doc.write_text(PAGE)
    _report.write_section("a", _report.section("a", "# title line\n| x |\n|---|\n| 1 |\n", "python a.py --quick",
                                               date="2026-01-02", machine_line="CPU, 2 cores"), str(doc))
    text = doc.read_text()
    assert "old a" not in text and "old b" in text and "Words between the sections stay." in text
    assert text.index("<!-- bench:a -->") < text.index("| 1 |") < text.index("<!-- /bench:a -->")
    assert "Command: `python a.py --quick`" in text and "Machine: CPU, 2 cores" in text and "Date: 2026-01-02" in text
    assert "\ntitle line\n" in text  # a script's title is text, not a heading of the page


def test_a_new_section_is_appended(tmp_path):
    doc = tmp_path / "benchmarks.md"
    doc.write_text(PAGE)
    _report.write_section("c", _report.section("c", "| y |", "python c.py"), str(doc))
    text = doc.read_text()
    assert text.startswith(PAGE.rstrip()) and text.rstrip().endswith("<!-- /bench:c -->")


@pytest.mark.parametrize("rc, env, written", [(0, {}, True), (1, {}, False), (0, {"BENCH_DOCS": "0"}, False),
                                              (0, {"PMI_RANK": "1"}, False)])
def test_run_and_report_writes_only_a_successful_run_of_rank_0(tmp_path, monkeypatch, capsys, rc, env, written):
    doc = tmp_path / "benchmarks.md"
    doc.write_text(PAGE)
    for k, v in env.items():
        monkeypatch.setenv(k, v)
    monkeypatch.setattr(sys, "argv", [os.path.join(_report.ROOT, "benchmarks", "bench_x.py"), "--quick"])

    def main():
        print("| measured | 42 |")
        return rc

    assert _report.run_and_report(main, doc=str(doc)) == rc
    assert "| measured | 42 |" in capsys.readouterr().out  # echoed
    text = doc.read_text()
    assert ("<!-- bench:bench_x -->" in text and "python benchmarks/bench_x.py --quick" in text
            and "| measured | 42 |" in text) == written


def test_every_benchmark_writes_a_section_that_states_command_machine_and_date():
    folder = os.path.join(_report.ROOT, "benchmarks")
    page = open(_report.DOC).read()
    scripts = sorted(f[:-3] for f in os.listdir(folder) if f.startswith("bench_") and f.endswith(".py"))
    assert len(scripts) >= 8
    for name in scripts:
        assert "run_and_report(main" in open(os.path.join(folder, f"{name}.py")).read(), name
        start, end = page.find(f"<!-- bench:{name} -->"), page.find(f"<!-- /bench:{name} -->")
        assert 0 <= start < end, f"docs/benchmarks.md has no section of {name}"
        head = page[start:end].splitlines()[1:4]
        assert [line.split(":")[0] for line in head] == ["Command", "Machine", "Date"], name
