""" "Holds a product on T" has one definition; features, labels and eligibility agree on it,
including on the boundary days (opened on T, closed on T, closed the day before T)."""

from __future__ import annotations

from datetime import date, timedelta

import polars as pl
import pytest

from features.customers import product_frame
from features.schemas import Tables
from models.products import ProductSpec
from serving.eligibility import held_products
from training.labels import build_labels

T = date(2026, 6, 1)
CASES = {  # customer -> (opened_at, closed_at, held on T?)
    "opened_before": (T - timedelta(days=30), None, True),
    "opened_on_t": (T, None, False),
    "opened_after": (T + timedelta(days=1), None, False),
    "closed_on_t": (T - timedelta(days=30), T, True),
    "closed_day_before": (T - timedelta(days=30), T - timedelta(days=1), False),
    "closed_day_after": (T - timedelta(days=30), T + timedelta(days=1), True),
}


@pytest.fixture(scope="module")
def tables() -> Tables:
    ids = list(CASES)
    return Tables.from_frames(
        customers=pl.DataFrame(
            {
                "customer_id": ids,
                "birth_date": [date(1980, 1, 1)] * len(ids),
                "customer_since": [date(2010, 1, 1)] * len(ids),
            }
        ),
        products=pl.DataFrame(
            {
                "customer_id": ids,
                "product": ["savings"] * len(ids),
                "opened_at": [c[0] for c in CASES.values()],
                "closed_at": [c[1] for c in CASES.values()],
            }
        ),
    )


def _expected() -> set[str]:
    return {cid for cid, (_, _, held) in CASES.items() if held}


def test_features_eligibility_and_labels_agree_on_every_boundary_day(tables: Tables) -> None:
    feats = product_frame(tables.products, T, ("savings",)).collect()
    by_features = set(feats.filter(pl.col("holds_savings"))["customer_id"])
    by_eligibility = set(held_products(tables, T).collect()["customer_id"])
    # the training population at T is everyone who does not hold the product at T
    population = build_labels(tables, ProductSpec(name="savings"), [T], 90).collect()
    by_labels = set(CASES) - set(population["customer_id"])
    assert by_features == _expected()
    assert by_eligibility == _expected()
    assert by_labels == _expected()
