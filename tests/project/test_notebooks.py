"""The example notebooks run top to bottom without an error (at tiny settings, via nbclient).

Each notebook reads its parameters from environment variables, which the kernel inherits; its
training runs and surface files go to a temporary folder.
"""

from __future__ import annotations

from pathlib import Path

import pytest

NOTEBOOKS = Path(__file__).resolve().parents[2] / "notebooks"

# Small enough for a few seconds each; large enough that every step does real work
# (PCA needs at least 3 checkpoints: model_0.pt and one per epoch).
SETTINGS = {
    "compare_minimizers.ipynb": {"EPOCHS": "2", "LARGE_EPOCHS": "6", "GRID": "5", "SAMPLES": "100"},
    "optimization_path.ipynb": {"EPOCHS": "3", "GRID": "5", "SAMPLES": "100"},
    "mode_connectivity.ipynb": {"EPOCHS": "3", "CURVE_EPOCHS": "2", "POINTS": "5", "GRID": "5", "SAMPLES": "100"},
    "linear_mode_connectivity.ipynb": {"EPOCHS": "3", "CURVE_EPOCHS": "2", "POINTS": "5", "MLP_WIDTHS": "8,64",
                                       "CNN_WIDTHS": "4,8"},
    "pruned_minima.ipynb": {"EPOCHS": "2", "RETRAIN_EPOCHS": "1", "RATIOS": "3", "GRID": "5", "SAMPLES": "100"},
    "quantized_minima.ipynb": {"EPOCHS": "2", "BIG_BATCH": "2", "GRID": "5", "LINE": "9", "SAMPLES": "100"},
    "sharpness.ipynb": {"EPOCHS": "1", "SAMPLES": "100", "MC": "4", "STEPS": "2", "LINE": "5", "GRID": "3"},
    "many_minima.ipynb": {"EPOCHS": "1", "LARGE_EPOCHS": "2", "TEACHER_EPOCHS": "1", "RETRAIN_EPOCHS": "1",
                          "LOWRANK_EPOCHS": "1", "SAMPLES": "100", "MC": "2",
                          "STEPS": "2", "LINE": "5", "GRID": "3"},
    "minima_study.ipynb": {"EPOCH_SCALE": "0.05", "MEASURES": "avg_filter,worst_filter,lambda_max",
                           "SAMPLES": "100", "MC": "2", "STEPS": "2"},
}


@pytest.mark.slow
@pytest.mark.parametrize("name", sorted(SETTINGS))
def test_notebook_runs(name, tmp_path, monkeypatch):
    nbformat = pytest.importorskip("nbformat")
    nbclient = pytest.importorskip("nbclient")
    pytest.importorskip("ipykernel")

    for key, value in {**SETTINGS[name], "THREADS": "1", "RUNS_DIR": str(tmp_path / "runs")}.items():
        monkeypatch.setenv(key, value)
    monkeypatch.setenv("MPLBACKEND", "Agg")  # the notebook's %matplotlib inline takes over

    nb = nbformat.read(NOTEBOOKS / name, as_version=4)
    assert not any(c.get("outputs") for c in nb.cells if c.cell_type == "code"), (
        f"{name} is committed with outputs; clear them"
    )
    client = nbclient.NotebookClient(nb, timeout=300, kernel_name="python3",
                                     resources={"metadata": {"path": str(tmp_path)}})
    client.execute()  # raises CellExecutionError, with the cell and traceback, on any error

    outputs = [o for c in nb.cells if c.cell_type == "code" for o in c.outputs]
    assert not [o for o in outputs if o.output_type == "error"]
    images = [o for o in outputs if "image/png" in o.get("data", {})]
    assert images, f"{name} drew no figure"
    if name == "optimization_path.ipynb":
        assert any("application/vnd.plotly.v1+json" in o.get("data", {}) for o in outputs)
