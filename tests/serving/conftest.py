"""Ledger fixtures: every ledger test runs on SQLite and on the real PostgreSQL server.

PostgreSQL tests isolate themselves in a fresh schema (dropped afterwards). When the server is
unreachable they skip locally but FAIL when the environment variable CI is set.
"""

from __future__ import annotations

import os
import sys
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
import sqlalchemy as sa

# the tests import their small data builders from `serving_world` next to this file
sys.path.insert(0, str(Path(__file__).parent))

PG_USERS = ("postgres", "root")
PG_BASE = "postgresql+psycopg://{user}@127.0.0.1:5432/test"


def _pg_base_url() -> str | None:
    for user in PG_USERS:
        url = PG_BASE.format(user=user)
        engine = sa.create_engine(url, connect_args={"connect_timeout": 3})
        try:
            with engine.connect() as conn:
                conn.execute(sa.text("select 1"))
            return url
        except sa.exc.OperationalError:
            continue
        finally:
            engine.dispose()
    return None


def pg_base_or_skip() -> str:
    """The PostgreSQL test database's URL; skips the test when the server is unreachable,
    fails it when CI is set (the one home of that rule for every test directory)."""
    url = _pg_base_url()
    if url is None:
        message = "PostgreSQL at 127.0.0.1:5432 (database test) is unreachable"
        if os.environ.get("CI"):
            pytest.fail(f"{message}; CI is set, so PostgreSQL tests must run")
        pytest.skip(message)
    return url


@pytest.fixture(scope="session")
def pg_base_url() -> str:
    return pg_base_or_skip()


class PgSchemas:
    """Creates private schemas on demand and drops them all at teardown."""

    def __init__(self, base: str) -> None:
        self.base = base
        self.engine = sa.create_engine(base)
        self.names: list[str] = []

    def new_url(self) -> str:
        name = f"t_serving_{uuid.uuid4().hex[:12]}"
        with self.engine.begin() as conn:
            conn.execute(sa.text(f'CREATE SCHEMA "{name}"'))
        self.names.append(name)
        return f"{self.base}?options=-csearch_path%3D{name}"

    def drop_all(self) -> None:
        with self.engine.begin() as conn:
            for name in self.names:
                conn.execute(sa.text(f'DROP SCHEMA IF EXISTS "{name}" CASCADE'))
        self.engine.dispose()


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def new_ledger(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Callable[[], str]]:
    """A factory of fresh, empty ledger URLs on the parametrised backend."""
    if request.param == "sqlite":
        counter = iter(range(10**6))
        yield lambda: f"sqlite:///{tmp_path / f'ledger{next(counter)}.sqlite'}"
        return
    schemas = PgSchemas(request.getfixturevalue("pg_base_url"))
    try:
        yield schemas.new_url
    finally:
        schemas.drop_all()


@pytest.fixture
def ledger_url(new_ledger: Callable[[], str]) -> str:
    """One fresh ledger URL on the parametrised backend."""
    return new_ledger()
