"""Every shell command README.md and docs/*.md show (their ```bash, ```sh, ```shell and ```console
blocks) runs as written, at a small size, and README's Python example runs.

How a page is run: its commands run in order, in one folder that holds what the pages say the
reader has (``INPUTS``: ``DIR`` a CIFAR-10 folder in the published format, written as
tests/data/test_data.py writes it; ``ckpt.pt``, ``a.pt``, ``b.pt``, ``c.pt`` resnet20 and ``r56.pt``
resnet56 checkpoints). A ``landscape-*`` command runs in this process through its console-script
entry point (setup.cfg), any other command (``python ...``, ``mpirun ...``) in a subprocess with
this checkout first on the path, a here-document (``cat > make_lm.py <<'PY' ... PY``) by bash as it
stands; each must exit 0. The sizes are cut by the rules of ``SMALL``
(applied to the words of a command, nothing else changes), and a checkpoint a cut training run
no longer writes (``model_300.pt`` of a 300-epoch run cut to 2) is read under the name it has
(``model_2.pt``). Commands that cannot run here are listed in ``SKIPPED`` with the reason.
"""

from __future__ import annotations

import configparser
import importlib
import os
import re
import shlex
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
PAGES = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]

SKIPPED = {  # the start of a command -> why it is not run here
    "pip install": "installs packages (.ci/run runs these)",
    "python -m pytest": "the test suite itself",
    "sbatch": "needs a Slurm cluster (tests/project/test_slurm.py submits performance.md's script to a real one)",
}
EPOCHS, SAMPLES, GRID_POINTS, RANKS = 2, 16, 3, 2


def _axis(spec: str) -> str:
    lo, hi, num = spec.split(":")
    return f"{lo}:{hi}:{min(int(num), GRID_POINTS)}"


def _flag(name: str, cut):
    """A rule for ``--name V`` and ``--name=V``: the value becomes ``cut(V)``."""
    return name, cut


SMALL = dict([  # flag -> its small value (a function of the written one)
    _flag("--x", _axis), _flag("--y", _axis), _flag("--z", _axis),   # at most 3 points an axis
    _flag("--epochs", lambda v: str(min(int(v), EPOCHS))),          # at most 2 epochs
    _flag("--save-every", lambda v: "1"),                            # every epoch
    _flag("--samples", lambda v: str(min(int(v), SAMPLES))),        # at most 16 samples
    _flag("--ratios", lambda v: _axis(v) if v.count(":") == 2 else v),
    _flag("--top-k", lambda v: str(min(int(v), 2))),
    _flag("-n", lambda v: str(min(int(v), RANKS))),                  # mpirun: 2 ranks
])
APPEND = [  # (the command, or its start ending in "..."), what is added: their defaults are large
    (("landscape-surf",), ["--x=-1:1:3", "--y=-1:1:3"]),             # the bare demo: a 3x3 grid
    (("landscape-markov", "..."), ["--steps", "500", "--chains", "50"]),
    (("landscape-hessian", "..."), ["--max-iter", "60", "--trace-max-samples", "20", "--density-runs", "2",
                                    "--density-iters", "20"]),
]


SHELLS = ("bash", "sh", "shell", "console")  # the languages of the code blocks a reader types into a shell
HEREDOC = re.compile(r"<<-?\s*(['\"]?)(?P<word>\w+)\1")


def _logical_lines(block: str, console: bool) -> list[str]:
    """A block's commands as lines: continuation lines joined, a here-document kept whole with its
    body (its lines joined by newlines); in a ``console`` block only the lines after a ``$ `` prompt
    (and their continuations), the rest being output."""
    lines, out, i = block.splitlines(), [], 0
    while i < len(lines):
        line = lines[i]
        i += 1
        if console:
            if not line.startswith("$ "):
                continue
            line = line[2:]
        while line.endswith("\\") and i < len(lines):
            line = line[:-1] + " " + lines[i].strip()
            i += 1
        m = HEREDOC.search(line)
        if m:
            body = [line]
            while i < len(lines) and lines[i].strip() != m.group("word"):
                body.append(lines[i])
                i += 1
            body.append(m.group("word"))
            i += 1
            out.append("\n".join(body))
        else:
            out.append(line)
    return out


def shell_commands(page: Path) -> list[str]:
    """The commands of the page's shell blocks (```bash, ```sh, ```shell, ```console): continuation
    lines joined, comments dropped, ``&&`` split; a here-document is one command, as written."""
    commands = []
    for lang, block in re.findall(rf"^```({'|'.join(SHELLS)})\n(.*?)^```", page.read_text(), re.S | re.M):
        for line in _logical_lines(block, lang == "console"):
            if "\n" in line:  # a here-document: run by the shell as it stands
                commands.append(line)
                continue
            words = shlex.split(line, comments=True)
            while words:  # "a && b": two commands
                end = words.index("&&") if "&&" in words else len(words)
                commands.append(shlex.join(words[:end]))
                words = words[end + 1:]
    return commands


def writes_a_file(command: str) -> bool:
    """``cat > FILE <<'EOF' ... EOF``: a here-document that writes a file the next commands use."""
    return "\n" in command and bool(re.match(r"cat\s+>\s*\S+\s+<<", command))


def entry_points() -> dict[str, str]:
    cfg = configparser.ConfigParser()
    cfg.read(ROOT / "setup.cfg")
    lines = cfg["options.entry_points"]["console_scripts"].strip().splitlines()
    return dict(tuple(part.strip() for part in line.split("=")) for line in lines)


def skipped(command: str) -> str | None:
    return next((why for start, why in SKIPPED.items() if command.startswith(start)), None)


def small(words: list[str], renames: dict[str, str]) -> list[str]:
    """``words`` cut to the small size; records in ``renames`` the checkpoints a cut run writes instead."""
    out, i = [], 0
    while i < len(words):
        w = words[i]
        name, eq, value = w.partition("=")
        if name in SMALL and eq:
            out.append(f"{name}={SMALL[name](value)}")
        elif w in SMALL and i + 1 < len(words):
            out += [w, SMALL[w](words[i + 1])]
            if w == "--epochs" and out[-1] != words[i + 1]:
                renames[f"model_{words[i + 1]}.pt"] = f"model_{out[-1]}.pt"
            i += 1
        else:
            out.append(w)
        i += 1
    for start, extra in APPEND:
        if (start[-1] == "..." and tuple(out[: len(start) - 1]) == start[:-1]) or tuple(out) == start:
            out += extra
    return [next((w.replace(a, b) for a, b in renames.items() if a in w), w) for w in out]


def _python_main(target: str) -> list[str]:
    module, func = target.split(":")
    return [sys.executable, "-c", f"import sys; from {module} import {func}; sys.exit({func}())"]


def run(words: list[str], cwd: Path, scripts: dict[str, str]) -> tuple[int, str]:
    if len(words) == 1 and "\n" in words[0]:  # a here-document: the shell runs it
        proc = subprocess.run(["bash", "-c", words[0]], cwd=cwd, capture_output=True, text=True, timeout=600)
        return proc.returncode, proc.stderr[-3000:]
    if words[0] in scripts:  # in this process, through the entry point
        module, func = scripts[words[0]].split(":")
        main = getattr(importlib.import_module(module), func)
        try:
            return int(main(words[1:]) or 0), ""
        except SystemExit as e:
            return int(e.code or 0), ""
    env = dict(os.environ, PYTHONPATH=os.pathsep.join([str(ROOT), os.environ.get("PYTHONPATH", "")]),
               OMP_NUM_THREADS="1", MPLBACKEND="Agg")
    argv = list(words)
    if argv[0] == "python":
        argv[0] = sys.executable
    if argv[0] == "mpirun":
        at = next(i for i, w in enumerate(argv) if i > 0 and (w in scripts or w == "python"))
        argv[at:at + 1] = _python_main(scripts[argv[at]]) if argv[at] in scripts else [sys.executable]
        if shutil.which("mpirun") is None:
            pytest.skip("no mpirun")
    proc = subprocess.run(argv, cwd=cwd, env=env, capture_output=True, text=True, timeout=600)
    return proc.returncode, proc.stdout[-2000:] + proc.stderr[-3000:]


def make_inputs(folder: Path) -> None:
    """What the pages say the reader has: DIR (CIFAR-10), resnet20 and resnet56 checkpoints."""
    import torch
    from helpers import make_cifar10

    from landscape.models import build_model

    make_cifar10(folder / "DIR", n_per_batch=8)
    for seed, name in enumerate(["ckpt.pt", "a.pt", "b.pt", "c.pt"]):
        torch.manual_seed(seed)
        torch.save(build_model("resnet20").state_dict(), folder / name)
    torch.manual_seed(0)
    torch.save(build_model("resnet56").state_dict(), folder / "r56.pt")


# --- quick: the pages' commands are ones we can run ------------------------------------------


def test_every_command_is_a_program_of_ours_or_skipped_with_a_reason():
    scripts = entry_points()
    for page in PAGES:
        for command in shell_commands(page):
            if writes_a_file(command):
                continue
            words = shlex.split(command)
            assert "..." not in words, f"{page.name}: {command!r} is not a command one can copy"
            program = words[3] if words[:2] == ["mpirun", "-n"] else words[0]
            known = program in scripts or program == "python" or skipped(command)
            assert known, f"{page.name}: {command!r} runs {program}, not a program of this project"


def test_every_shell_block_is_read(tmp_path):
    """```sh, ```shell and ```console blocks are run too, not only ```bash ones (issue 31.7): a console
    block's commands are its ``$ `` lines; a here-document stays one command with its body."""
    page = tmp_path / "page.md"
    page.write_text("```sh\nlandscape-surf --x=-1:1:5 \\\n    --out a.h5   # a comment\n```\n"
                    "```shell\nlandscape-plot a.h5 && landscape-plot b.h5\n```\n"
                    "```console\n$ landscape-traj --help\nusage: landscape-traj ...\n```\n"
                    "```bash\ncat > make.py <<'PY'\nprint('x')  # not a shell comment\nPY\npython make.py\n```\n"
                    "```python\nimport landscape\n```\n")
    assert shell_commands(page) == ["landscape-surf --x=-1:1:5 --out a.h5", "landscape-plot a.h5",
                                    "landscape-plot b.h5", "landscape-traj --help",
                                    "cat > make.py <<'PY'\nprint('x')  # not a shell comment\nPY", "python make.py"]
    assert writes_a_file(shell_commands(page)[4])
    for name in ("adaptive.md", "language_models.md"):  # pages whose commands are in ```sh blocks
        assert any(c.startswith("landscape-surf") for c in shell_commands(ROOT / "docs" / name)), name


def test_small_rules_cut_sizes_and_follow_cut_runs():
    renames: dict[str, str] = {}
    words = small(shlex.split("landscape-train --arch resnet56 --epochs 300 --save-every 10 --out runs/r"), renames)
    assert words == shlex.split("landscape-train --arch resnet56 --epochs 2 --save-every 1 --out runs/r")
    assert small(["landscape-surf", "--model", "runs/r/model_300.pt", "--x=-1:1:51", "--y", "-1:1:51"], renames) == \
        ["landscape-surf", "--model", "runs/r/model_2.pt", "--x=-1:1:3", "--y", "-1:1:3"]
    assert small(["landscape-surf"], {}) == ["landscape-surf", "--x=-1:1:3", "--y=-1:1:3"]


def test_readme_is_short_and_links_the_architecture_on_its_first_screen():
    lines = (ROOT / "README.md").read_text().splitlines()
    assert len(lines) <= 200
    assert any("docs/architecture.md" in line for line in lines[:25])


def _slug(heading: str) -> str:
    """GitHub's anchor of a heading."""
    return re.sub(r"[^\w\- ]", "", heading.strip().lower()).replace(" ", "-")


def test_relative_links_point_at_files_and_headings():
    for page in PAGES:
        for target, anchor in re.findall(r"\]\(([^)#\s]*)(?:#([^)\s]*))?\)", page.read_text()):
            if "://" in target:
                continue
            path = (page.parent / target).resolve() if target else page
            assert path.exists(), f"{page.name}: {target} does not exist"
            if anchor and path.suffix == ".md":
                slugs = {_slug(h) for h in re.findall(r"^#+ (.*)$", path.read_text(), re.M)}
                assert anchor in slugs, f"{page.name}: {target}#{anchor}: no such heading"


def help_flags(target: str) -> set[str]:
    """The flags a command's ``--help`` lists (on its option lines)."""
    import contextlib
    import io

    module, func = target.split(":")
    out = io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.suppress(SystemExit):
        getattr(importlib.import_module(module), func)(["--help"])
    return set(re.findall(r"^  (?:-\w, )?(--[a-z0-9][a-z0-9-]*)", out.getvalue(), re.M)) - {"--help"}


def test_every_flag_of_every_command_is_documented():
    """Each command's flags appear in its section of docs/cli.md, or on the pages README's table links for it."""
    readme = (ROOT / "README.md").read_text()
    sections = dict(re.findall(r"^## (\S+)\n(.*?)(?=^## |\Z)", (ROOT / "docs" / "cli.md").read_text(), re.S | re.M))
    for program, target in entry_points().items():
        row = next((line for line in readme.splitlines() if line.startswith(f"| `{program}`")), None)
        assert row, f"README's table of commands has no row for {program}"
        pages = {ROOT / p for p in re.findall(r"\]\((docs/[^)#]+)", row)}
        text = sections.get(program, "") + "".join(p.read_text() for p in pages if p.exists())
        flags = help_flags(target)
        assert len(flags) >= 3, f"{program} --help printed no flags"
        missing = sorted(f for f in flags if not re.search(re.escape(f) + r"(?![\w-])", text))
        assert not missing, f"{program}: {missing} are not documented"


# --- slow: run them --------------------------------------------------------------------------


@pytest.mark.slow
@pytest.mark.parametrize("page", [p for p in PAGES if shell_commands(p)], ids=lambda p: p.name)
def test_the_page_commands_run(page, tmp_path, monkeypatch):
    """Each command runs as written (at a small size), and what it writes is whole: every HDF5 file
    it writes reads back verified, every PNG is one."""
    from landscape.io.h5 import probe

    scripts = entry_points()
    make_inputs(tmp_path)
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("MPLBACKEND", "Agg")
    renames: dict[str, str] = {}
    for command in shell_commands(page):
        if skipped(command):
            continue
        words = [command] if writes_a_file(command) else small(shlex.split(command), renames)
        before = {p: p.stat().st_mtime_ns for p in tmp_path.rglob("*") if p.suffix in (".h5", ".png")}
        code, output = run(words, tmp_path, scripts)
        assert code == 0, f"{page.name}: {shlex.join(words)} (as written: {command}) exited {code}\n{output}"
        for path in (p for p in tmp_path.rglob("*") if p.suffix in (".h5", ".png")):
            if before.get(path) == path.stat().st_mtime_ns:
                continue  # not written by this command
            if path.suffix == ".png":
                assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n", (page.name, command, path.name)
            else:
                found = probe(str(path))
                assert found.status == "ok" and found.verified is not False, (page.name, command, path.name, found)


@pytest.mark.slow
def test_readme_python_example_runs(tmp_path):
    blocks = re.findall(r"^```python\n(.*?)^```", (ROOT / "README.md").read_text(), re.S | re.M)
    assert blocks
    (tmp_path / "example.py").write_text(blocks[0])
    env = dict(os.environ, PYTHONPATH=str(ROOT), OMP_NUM_THREADS="1", MPLBACKEND="Agg")
    proc = subprocess.run([sys.executable, "example.py"], cwd=tmp_path, env=env, capture_output=True, text=True,
                          timeout=600)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert (tmp_path / "surface.h5").exists() and (tmp_path / "contour.png").exists()
    import math

    from landscape.io.surface_file import read_surface

    surface = read_surface(tmp_path / "surface.h5")  # whole and verified, every point computed
    assert surface.completed.all() and all(math.isfinite(v) for a in surface.values.values() for v in a.flat)
    assert (tmp_path / "contour.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
