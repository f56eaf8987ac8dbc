"""Monitoring tests run on SQLite and on the real PostgreSQL server, with the ledger fixtures
of tests/serving/conftest.py (private schema per test; skip locally, fail in CI)."""

from __future__ import annotations

import importlib.util
from collections.abc import Iterator
from pathlib import Path

import pytest

_spec = importlib.util.spec_from_file_location(
    "serving_ledger_fixtures", Path(__file__).parents[1] / "serving" / "conftest.py"
)
assert _spec is not None and _spec.loader is not None
_serving = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(_serving)
pg_base_url = _serving.pg_base_url


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def ledger_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """A fresh, empty ledger URL on the parametrised backend."""
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'ledger.sqlite'}"
        return
    schemas = _serving.PgSchemas(request.getfixturevalue("pg_base_url"))
    try:
        yield schemas.new_url()
    finally:
        schemas.drop_all()
