"""Fixtures: a generated toy bank and a fresh MLflow SQLite store per test.

Creating an MLflow database runs its schema migrations (~8 s), so one migrated empty database
is made per session and copied into each test's tmp_path: every test still gets its own real
store."""

from __future__ import annotations

import shutil
from pathlib import Path

import polars as pl
import pytest

from features.schemas import Tables
from tests.training.toybank import toy_bank


@pytest.fixture(scope="session")
def empty_mlflow_db(tmp_path_factory: pytest.TempPathFactory) -> Path:
    from mlflow import MlflowClient

    from models.registry import quiet_mlflow

    quiet_mlflow()
    path = tmp_path_factory.mktemp("mlflow-template") / "mlflow.db"
    MlflowClient(tracking_uri=f"sqlite:///{path}").search_experiments()
    return path


@pytest.fixture
def store(tmp_path: Path, empty_mlflow_db: Path) -> tuple[Path, str]:
    """(work_dir, tracking_uri) of a fresh MLflow store in tmp_path."""
    shutil.copy(empty_mlflow_db, tmp_path / "mlflow.db")
    return tmp_path, f"sqlite:///{tmp_path / 'mlflow.db'}"


@pytest.fixture(scope="session")
def bank() -> tuple[Tables, pl.DataFrame, pl.DataFrame]:
    return toy_bank(3000, seed=0)
