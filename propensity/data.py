"""How every command and notebook loads a data directory: the contract loader with the
objection register of the configured ledger laid over the consents table.

An objection recorded between two deliveries of the bank's data (`propensity objection
record`, `POST /v1/customers/{id}/objection`) is in the register, not yet in the bank's
`consents` table; every batch path (run, score, select, features, train, validate, the
notebooks) loads through `load_data`, so each of them sees it (`features.io.load_tables`
applies `features.consent.with_objections`).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import polars as pl

from features.io import LoadResult, load_tables
from propensity.config import AppConfig
from serving.ledger import DEFAULT_LEDGER_FILE


def ledger_location(config: AppConfig) -> str:
    """The configured ledger URL, else the SQLite file of the work directory (not created)."""
    if config.ledger.url:
        return config.ledger.url
    return f"sqlite:///{(config.work_dir / DEFAULT_LEDGER_FILE).resolve()}"


def objection_register(config: AppConfig) -> pl.DataFrame:
    """The register of the config's ledger (empty when there is no ledger yet)."""
    from serving.objections import register_frame

    return register_frame(ledger_location(config))


def load_data(data_dir: Path, config: AppConfig, **kwargs: Any) -> LoadResult:
    """`load_tables` with the config's input options and the ledger's objection register."""
    return load_tables(
        Path(data_dir), options=config.data, objections=objection_register(config), **kwargs
    )
