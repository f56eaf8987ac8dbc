"""The data scientists' notebooks run top to bottom on small data, and are stored without
outputs in git."""

from __future__ import annotations

from pathlib import Path

import nbformat
import pytest
from nbclient import NotebookClient

NOTEBOOKS = sorted((Path(__file__).parents[2] / "notebooks").glob("*.ipynb"))


def test_both_notebooks_exist() -> None:
    assert [p.name for p in NOTEBOOKS] == [
        "01_features_and_training.ipynb",
        "02_campaign_selection.ipynb",
    ]


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.stem)
def test_notebook_is_stored_without_outputs(path: Path) -> None:
    nb = nbformat.read(path, as_version=4)
    for cell in nb.cells:
        if cell.cell_type == "code":
            assert cell.outputs == [] and cell.execution_count is None, path.name


def execute(nb: nbformat.NotebookNode, cwd: Path) -> list[dict]:
    """Run the notebook's cells in a real kernel; the error outputs."""
    client = NotebookClient(
        nb, timeout=180, kernel_name="python3", resources={"metadata": {"path": str(cwd)}}
    )
    client.execute()
    return [
        out
        for cell in nb.cells
        if cell.cell_type == "code"
        for out in cell.outputs
        if out.output_type == "error"
    ]


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.stem)
def test_notebook_runs(path: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Runs top to bottom; writes only under its WORK directory, into its own MLflow store,
    never into the user's (here a store named by MLFLOW_TRACKING_URI) nor beside itself."""
    user_store = tmp_path / "user" / "mlflow.db"
    monkeypatch.setenv("PROPENSITY_NOTEBOOK_WORK", str(tmp_path / "work"))
    monkeypatch.setenv("MLFLOW_TRACKING_URI", f"sqlite:///{user_store}")
    cwd = tmp_path / "cwd"
    cwd.mkdir()
    before = sorted(p.name for p in NOTEBOOKS[0].parent.iterdir())
    assert execute(nbformat.read(path, as_version=4), cwd) == []
    assert (tmp_path / "work" / "bank" / "customers.parquet").exists()
    assert (tmp_path / "work" / "mlflow.db").exists()
    assert not user_store.exists() and list(cwd.iterdir()) == []
    assert sorted(p.name for p in NOTEBOOKS[0].parent.iterdir()) == before


def test_notebooks_default_to_a_temporary_work_directory() -> None:
    for path in NOTEBOOKS:
        setup = nbformat.read(path, as_version=4).cells[1].source
        assert "tempfile.gettempdir()" in setup and "TRACKING_URI" in setup, path.name
