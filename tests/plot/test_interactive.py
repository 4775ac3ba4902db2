"""Plotly figures and the offline HTML page: values, gaps, inline plotly.js, a real browser."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import tempfile

import numpy as np
import pytest

pytest.importorskip("plotly")

from helpers import make_surface  # noqa: E402

from landscape.io.trajectory_file import Trajectory  # noqa: E402
from landscape.plot.interactive import (  # noqa: E402
    contour_figure,
    line_figure,
    surface_figure,
    write_html,
)
from landscape.plot.style import Style  # noqa: E402

CHROMIUM = "/usr/bin/chromium"


def bowl(nx: int = 7, ny: int = 5):
    """A non-square 2D surface, loss = 0.5 + x^2 + 2 y^2, with one NaN and one zero loss."""
    x, y = np.linspace(-1, 1, nx), np.linspace(-2, 2, ny)
    loss = 0.5 + x[None, :] ** 2 + 2 * y[:, None] ** 2  # [j, i] at (x[i], y[j])
    loss[3, 1] = np.nan
    loss[ny // 2, nx // 2] = 0.0
    acc = 100.0 - 10 * loss
    return make_surface([x, y], {"train_loss": loss, "train_acc": acc},
                        {"split": "train", "arch": "mlp", "dataset": "digits"})


def as_float(z) -> np.ndarray:
    """plotly's z (lists or an object array, None for gaps) as floats with NaN for gaps."""
    return np.array([[np.nan if v is None else v for v in row] for row in z], dtype=float)


def test_surface_figure_holds_the_values_with_gaps():
    s = bowl()
    trace = surface_figure(s).data[0]
    assert trace.type == "surface"
    np.testing.assert_array_equal(trace.x, s.x)
    np.testing.assert_array_equal(trace.y, s.y)
    z = np.asarray(trace.z, dtype=object)
    assert z.shape == (5, 7)  # rows along y
    assert z[3, 1] is None  # the NaN at x[1], y[3]
    np.testing.assert_array_equal(as_float(trace.z), s.loss)
    hover = np.asarray(trace.customdata, dtype=object)
    assert hover.shape == (5, 7, 2)
    assert hover[0, 6, 0] == s.loss[0, 6] and hover[0, 6, 1] == s.acc[0, 6]
    assert "loss" in trace.hovertemplate and "accuracy" in trace.hovertemplate


def test_log_colour_takes_log10_and_drops_non_positive():
    s = bowl()
    z = as_float(surface_figure(s, Style(scale="log")).data[0].z)
    with np.errstate(divide="ignore"):
        expected = np.where(s.loss > 0, np.log10(s.loss), np.nan)
    np.testing.assert_allclose(z, expected)
    assert np.isnan(z[2, 3])  # loss 0 at the centre
    assert np.isnan(as_float(contour_figure(s, Style(scale="log")).data[0].z)).sum() == 2


def test_contour_figure_and_path_overlay():
    s = bowl()
    traj = Trajectory(
        directions=[], xcoord=np.array([0.5, 0.2, 0.0]), ycoord=np.array([1.0, 0.4, 0.0]),
        explained_variance_ratio=np.array([0.8, 0.15]), residual=np.zeros(3), checkpoints=[],
        epochs=np.array([0, 5, 10]),
    )
    fig = contour_figure(s, Style(quantity="acc"), trajectory=traj)
    contour, path = fig.data
    assert contour.type == "contour"
    np.testing.assert_array_equal(as_float(contour.z), s.acc)
    np.testing.assert_array_equal(path.x, traj.xcoord)
    assert list(path.text) == ["epoch 0", "epoch 5", "epoch 10"]


def test_1d_surface_is_a_loss_and_accuracy_line_figure():
    x = np.linspace(-1, 1, 6)
    loss = x**2 + 1
    loss[2] = np.inf
    values = {"test_loss": loss, "test_acc": 90 - x}
    s = make_surface([x], values, {"split": "test"})
    for fig in (line_figure(s), surface_figure(s), contour_figure(s)):
        lo, acc = fig.data
        assert lo.y[2] is None and lo.y[0] == loss[0]
        np.testing.assert_array_equal(acc.y, 90 - x)
        assert (lo.yaxis, acc.yaxis) == ("y", "y2")


def test_html_is_self_contained(tmp_path):
    path = write_html(bowl(), tmp_path / "s.html")
    text = open(path, encoding="utf-8").read()
    assert not re.search(r"<script[^>]*\bsrc\s*=", text, re.I)  # nothing fetched
    assert not re.search(r"<link[^>]*\bhref\s*=\s*[\"']https?:", text, re.I)
    assert len(text) > 1_000_000  # plotly.js itself is inside
    assert "Plotly.newPlot" in text
    assert text.count('class="plotly-graph-div"') == 2  # 3D surface and contours
    assert "100%" in text and "85vh" in text  # each figure fits the window
    assert "mlp | digits | train" in text


def _chromium(args: list[str], html: str, timeout: int = 120) -> subprocess.CompletedProcess:
    """Headless chromium with the network shut: a dead proxy and no name resolution."""
    profile = tempfile.mkdtemp()
    try:
        return subprocess.run(
            [CHROMIUM, "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic",
             "--no-first-run", "--disable-background-networking", "--disable-component-update",
             "--disable-sync", "--proxy-server=127.0.0.1:9",
             "--host-resolver-rules=MAP * ~NOTFOUND",
             f"--user-data-dir={profile}", "--virtual-time-budget=10000", *args,
             f"file://{os.path.abspath(html)}"],
            capture_output=True, timeout=timeout, check=False, text=True,
        )
    finally:
        shutil.rmtree(profile, ignore_errors=True)


@pytest.mark.slow
@pytest.mark.skipif(not os.path.exists(CHROMIUM),
                    reason="no /usr/bin/chromium (apt-get install chromium)")
def test_page_renders_offline_in_a_browser(tmp_path):
    import matplotlib.image as mpimg

    html = write_html(bowl(41, 31), tmp_path / "s.html")
    shot = tmp_path / "shot.png"
    _chromium([f"--screenshot={shot}", "--window-size=800,1400"], html)
    assert shot.exists(), "chromium wrote no screenshot"
    rgb = mpimg.imread(shot)[..., :3]
    assert len(np.unique(rgb.reshape(-1, 3), axis=0)) > 100
    # the colour scale's saturated colours cover a good part of the page, not only grey text
    saturation = rgb.max(axis=-1) - rgb.min(axis=-1)
    assert (saturation > 0.4).mean() > 0.05
    run = _chromium(["--dump-dom", "--enable-logging=stderr", "--v=0"], html)
    dom = run.stdout
    console = [line for line in run.stderr.splitlines() if ":CONSOLE" in line]
    # page errors and failed loads (a CDN script would fail: the network is shut); the GL driver's
    # performance notes of headless software WebGL are not errors
    errors = [line for line in console
              if re.search(r"Uncaught|[A-Za-z]*Error:|Failed to load|net::ERR", line)]
    assert not errors, errors
    assert dom.count('class="main-svg"') >= 2  # plotly drew both figures
    assert 'class="contourlevel"' in dom  # the contour lines
    assert 'class="gl-container"' in dom  # the 3D scene
