"""Point-in-time and special-category properties of the feature pipeline (hypothesis)."""

from __future__ import annotations

from datetime import date, datetime, timedelta

import numpy as np
import polars as pl
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from polars.testing import assert_frame_equal

from features.config import FeatureConfig
from features.pipeline import build_features
from features.schemas import Tables
from tests.features.feature_synth import (
    PALETTE,
    SPECIAL_PALETTE,
    make_frames,
    transaction_rows,
    with_balances,
)

CONFIG = FeatureConfig()
AS_OF = st.dates(min_value=date(2025, 2, 1), max_value=date(2026, 12, 1))
SETTINGS = settings(max_examples=8, deadline=None, suppress_health_check=[HealthCheck.too_slow])


def features(frames: dict[str, pl.DataFrame], as_of: date) -> pl.DataFrame:
    return build_features(Tables.from_frames(**frames), as_of, CONFIG).collect()


@SETTINGS
@given(seed=st.integers(0, 10_000), as_of=AS_OF, data=st.data())
def test_rows_on_or_after_as_of_change_nothing(seed: int, as_of: date, data: st.DataObject) -> None:
    frames, _ = make_frames(seed, n_customers=8, n_rows=300)
    before = features(frames, as_of)
    tx = frames["transactions"]
    cut = datetime.combine(as_of, datetime.min.time())
    future = pl.col("booked_at") >= cut
    rng = np.random.default_rng(seed)
    keep_frac = data.draw(st.floats(0.0, 1.0))
    extra = transaction_rows(
        rng, sorted(set(tx["customer_id"])), 50, PALETTE + SPECIAL_PALETTE, 400, "F"
    )
    extra = extra.with_columns(
        (pl.lit(cut) + (pl.col("booked_at") - pl.col("booked_at").min())).alias("booked_at"),
        pl.lit(1e6).alias("balance_after"),
    )
    changed = pl.concat(
        [
            tx.filter(~future),
            tx.filter(future)
            .sample(fraction=keep_frac, seed=seed)
            .with_columns(
                pl.col("amount") * 7, pl.lit("Holland Casino").alias("counterparty_name")
            ),
            extra.select(tx.columns),
        ]
    )
    later = as_of + timedelta(days=data.draw(st.integers(0, 300)))
    products = pl.concat(
        [
            frames["products"].with_columns(
                pl.when(pl.col("closed_at") >= as_of)
                .then(None)
                .otherwise(pl.col("closed_at"))
                .alias("closed_at")
            ),
            pl.DataFrame(
                {
                    "customer_id": ["C0000"],
                    "product": ["savings"],
                    "opened_at": [later],
                    "closed_at": [None],
                },
                schema_overrides={"closed_at": pl.Date},
            ),
        ]
    )
    customers = pl.concat(
        [
            frames["customers"],
            pl.DataFrame(
                {
                    "customer_id": ["NEW"],
                    "birth_date": [date(1990, 1, 1)],
                    "customer_since": [later],
                }
            ),
        ]
    )
    after = features(
        {**frames, "transactions": changed, "customers": customers, "products": products}, as_of
    )
    assert_frame_equal(before, after)


@SETTINGS
@given(seed=st.integers(0, 10_000), as_of=AS_OF, n_special=st.integers(1, 80))
def test_special_category_rows_change_nothing(seed: int, as_of: date, n_special: int) -> None:
    """Special rows at any date, with balance_after kept consistent (as a bank would book it)."""
    frames, openings = make_frames(seed, n_customers=8, n_rows=300)
    before = features(frames, as_of)
    tx = frames["transactions"].drop("balance_after")
    rng = np.random.default_rng(seed + 1)
    ids = sorted(set(tx["customer_id"]))
    special = transaction_rows(rng, ids, n_special, SPECIAL_PALETTE, 800, "X")
    special = special.with_columns(pl.col("booked_at") - pl.duration(days=50))
    more = with_balances(pl.concat([tx, special.select(tx.columns)]), openings)
    after = features({**frames, "transactions": more}, as_of)
    assert_frame_equal(before, after)
