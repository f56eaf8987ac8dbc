"""Fixtures of the real-time service tests: one generated bank and one MLflow registry with a
champion per product for the whole session; servers are started per module or test."""

from __future__ import annotations

import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).parent))

from online_world import (
    DESK_TOKEN,
    EVENTS_TOKEN,
    PRODUCTS,
    Bank,
    Registry,
    make_bank,
    register,
    train_bundle,
)

from propensity.tokens import hash_secret


@pytest.fixture(scope="session")
def bank(tmp_path_factory: pytest.TempPathFactory) -> Bank:
    return make_bank(tmp_path_factory.mktemp("online-bank"))


@pytest.fixture(scope="session")
def registry(tmp_path_factory: pytest.TempPathFactory, bank: Bank) -> Registry:
    """A real MLflow store with a small champion model for each product."""
    from models.registry import quiet_mlflow

    quiet_mlflow()
    work = tmp_path_factory.mktemp("online-registry")
    uri = f"sqlite:///{work / 'mlflow.db'}"
    for i, product in enumerate(PRODUCTS):
        register(train_bundle(product, bank.features, seed=i), work, uri, "champion")
    return Registry(work, uri, work / "mlflow.db")


@pytest.fixture(scope="session")
def token_table() -> list[dict[str, str]]:
    """Two tokens (their hashes, as `propensity token create` stores them)."""
    return [
        {"name": "stream", "role": "events", "hash": hash_secret(EVENTS_TOKEN)},
        {"name": "desk", "role": "service_desk", "hash": hash_secret(DESK_TOKEN)},
    ]


@pytest.fixture(scope="session")
def pg_url_factory() -> Iterator[object]:
    """Fresh PostgreSQL schemas (skips locally, fails in CI, when the server is down)."""
    from tests.serving.conftest import PgSchemas, pg_base_or_skip

    schemas = PgSchemas(pg_base_or_skip())
    try:
        yield schemas.new_url
    finally:
        schemas.drop_all()
