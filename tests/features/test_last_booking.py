"""The run date found while validating (one scan) is the one a separate scan finds, and a
row booked in the future (rejected) never moves it."""

from __future__ import annotations

from datetime import datetime, timedelta
from pathlib import Path

import polars as pl

from features.io import load_tables
from propensity.job import default_as_of
from synthbank import generate


def test_last_booking_comes_from_the_validation_scan(tmp_path: Path) -> None:
    bank = tmp_path / "bank"
    generate(customers=150, months=6, seed=2, out=bank)
    load = load_tables(bank)
    assert load.last_booked is not None
    assert default_as_of(load.tables, load) == default_as_of(load.tables)
    parts = sorted((bank / "transactions").glob("*.parquet")) or [bank / "transactions.parquet"]
    tx = pl.read_parquet(parts)
    future = tx.head(1).with_columns(
        transaction_id=pl.lit("FUTURE-1"), booked_at=pl.lit(datetime.now() + timedelta(days=9))
    )
    for p in parts:
        p.unlink()
    out = bank / "transactions"
    out.mkdir(exist_ok=True)
    pl.concat([tx, future.cast(tx.schema)]).write_parquet(out / "part-0.parquet")
    again = load_tables(bank)
    assert again.rejected["transactions"].height == 1
    assert again.last_booked == load.last_booked
    assert default_as_of(again.tables, again) == default_as_of(again.tables)
