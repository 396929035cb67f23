"""The quick-start notebook runs top to bottom on a small workspace."""

from pathlib import Path

import nbformat
from nbclient import NotebookClient

NOTEBOOK = Path(__file__).resolve().parents[1] / "notebooks" / "quickstart.ipynb"


def test_quickstart_notebook_runs(tmp_path, monkeypatch):
    monkeypatch.setenv("LEADLINK_NOTEBOOK_DIR", str(tmp_path / "run"))
    monkeypatch.setenv("LEADLINK_NOTEBOOK_CONTACTS", "5000")
    monkeypatch.setenv("LEADLINK_NOTEBOOK_TRACKING_URI", f"sqlite:///{tmp_path / 'mlflow.db'}")
    notebook = nbformat.read(NOTEBOOK, as_version=4)
    NotebookClient(notebook, timeout=600, kernel_name="python3", resources={"metadata": {"path": str(tmp_path)}}).execute()

    outputs = [output for cell in notebook.cells if cell.cell_type == "code" for output in cell.get("outputs", [])]
    assert not [output for output in outputs if output.get("output_type") == "error"]
    assert (tmp_path / "run" / "scores.parquet").is_file()
    # The calibration, gain and per-fold plots are shown as images, not as a figure's text repr.
    images = [output for output in outputs if "image/png" in output.get("data", {})]
    assert len(images) >= 3
