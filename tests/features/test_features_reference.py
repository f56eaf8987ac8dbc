"""The polars pipeline against the naive row-by-row reference, family by family."""

from __future__ import annotations

from datetime import date
from functools import cache

import polars as pl
import pytest
from polars.testing import assert_frame_equal

from features.config import FeatureConfig
from features.pipeline import build_features
from features.schemas import DEFAULT_PRODUCTS
from tests.features.feature_reference import reference_features
from tests.features.feature_synth import make_tables

FAMILIES = {
    "customer": ("age_years", "tenure_days", "holds_", "days_held_", "products_held"),
    "flows": ("inflow_", "outflow_", "net_flow_", "airport_", "abroad_"),
    "categories": ("_txn_count_", "_amount_sum_"),
    "recency": ("days_since_",),
    "balance": ("balance_",),
    "income": ("salary_", "income_", "pension_received", "benefits_received"),
    "life_events": ("large_inflow", "child_benefit_started", "first_airport", "first_abroad"),
}


@cache
def expected_and_got(seed: int, as_of: date, config: FeatureConfig) -> tuple[pl.DataFrame, ...]:
    tables = make_tables(seed)
    got = build_features(tables, as_of, config).collect()
    expected = reference_features(tables, as_of, config, DEFAULT_PRODUCTS)
    return got, expected.select(got.columns).cast(got.schema)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("seed", "as_of"),
    [(1, date(2026, 1, 1)), (2, date(2025, 7, 15)), (3, date(2026, 11, 30)), (4, date(2025, 3, 1))],
)
@pytest.mark.parametrize("family", sorted(FAMILIES))
def test_family_matches_reference(seed: int, as_of: date, family: str) -> None:
    got, expected = expected_and_got(seed, as_of, FeatureConfig())
    cols = [c for c in got.columns[2:] if any(k in c for k in FAMILIES[family])]
    assert cols, family
    assert got.height > 0
    assert_frame_equal(
        got.select("customer_id", *cols),
        expected.select("customer_id", *cols),
        rel_tol=1e-9,
        abs_tol=1e-6,
    )


def test_every_column_is_checked_and_other_windows_work() -> None:
    config = FeatureConfig(windows=(7, 60, 200), large_inflow_absolute=5000.0)
    got, expected = expected_and_got(5, date(2026, 2, 10), config)
    covered = {
        c for c in got.columns[2:] for keys in FAMILIES.values() if any(k in c for k in keys)
    }
    assert covered == set(got.columns[2:])
    assert_frame_equal(got, expected, rel_tol=1e-9, abs_tol=1e-6)
