"""A quick suite that a busy machine can pass (issue 31, part 10): no test depends on wall-clock
limits or start-up timing. Read from the tests' source:

- a ``timeout=`` is a hang guard, never a limit a slow machine can reach: ``TIMEOUT`` of
  tests/helpers.py (minutes) or a literal of at least ``GUARD`` seconds;
- no sleep stands in for synchronization: ``time.sleep`` in a test or a test module's helper runs
  only inside a loop that polls for what the other process said (a file, a line, its end): a
  ``while`` loop, or a ``for`` loop that breaks or returns on it; a sleep in a nested function (a
  fake model's cost) is a cost, not a wait, and one marked ``# any moment`` chooses a moment of a
  test that must hold at every moment.
"""

from __future__ import annotations

import ast
from pathlib import Path

from helpers import TIMEOUT

TESTS = Path(__file__).resolve().parents[1]
GUARD = 300  # seconds: the least a hang guard may give a command on a loaded 2-core machine


def problems(source: str, name: str) -> list[str]:
    found = []
    tree = ast.parse(source)
    for node in ast.walk(tree):
        if isinstance(node, ast.keyword) and node.arg == "timeout":
            v = node.value
            if isinstance(v, ast.Constant) and isinstance(v.value, int | float) and v.value < GUARD:
                found.append(f"{name}:{v.lineno}: timeout={v.value} (a limit a loaded machine reaches)")

    lines = source.splitlines()

    def polls(loop: ast.AST) -> bool:
        return isinstance(loop, ast.While) or (isinstance(loop, ast.For) and any(
            isinstance(n, ast.Break | ast.Return) for n in ast.walk(loop)))

    def visit(node: ast.AST, polling: bool) -> None:
        for child in ast.iter_child_nodes(node):
            if isinstance(child, ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef | ast.Lambda):
                continue  # a nested function: its sleeps are costs of a fake, not waits
            f = child.func if isinstance(child, ast.Call) else None
            if (isinstance(f, ast.Attribute) and f.attr == "sleep" and ast.unparse(f.value) in ("time", "_time")
                    and not polling and "# any moment" not in lines[child.lineno - 1]):
                found.append(f"{name}:{child.lineno}: time.sleep outside a polling loop")
            visit(child, polling or polls(child))

    for top in tree.body:
        if isinstance(top, ast.FunctionDef):
            visit(top, False)
    return sorted(set(found))


def test_no_test_waits_on_the_clock():
    assert TIMEOUT >= GUARD
    found = [p for path in sorted(TESTS.rglob("test_*.py"))
             for p in problems(path.read_text(), str(path.relative_to(TESTS)))]
    assert found == []


def test_the_check_finds_the_tests_that_failed_on_a_loaded_machine():
    """The two of the issue, as they were written: a SIGINT 0.2 s after start, and a 60 s limit."""
    old = '''
def test_ctrl_c(tmp_path):
    for delay in (0.2, 4.0):
        proc = subprocess.Popen(["landscape-surf"])
        time.sleep(delay)
        proc.send_signal(signal.SIGINT)
        proc.communicate(timeout=60)

def dead_writer():
    proc.send_signal(signal.SIGKILL)
    time.sleep(0.2)

def test_polls(out):
    while not os.path.exists(out):
        time.sleep(0.05)
    for _ in range(100):
        if os.path.exists(out):
            break
        time.sleep(0.05)
    subprocess.run(["x"], timeout=TIMEOUT)
    time.sleep(4.5)  # any moment: the test holds at every one

def test_a_fake_that_costs_time():
    def forward(x):
        time.sleep(0.05)
        return x
'''
    assert problems(old, "t.py") == ["t.py:11: time.sleep outside a polling loop",
                                     "t.py:5: time.sleep outside a polling loop",
                                     "t.py:7: timeout=60 (a limit a loaded machine reaches)"]
