"""Distress flags (eligibility, not features) and hand-made life-event stories."""

from __future__ import annotations

from datetime import date, datetime, timedelta

import polars as pl
import pytest

from features.config import DistressConfig, FeatureConfig
from features.distress import distress_flags
from features.pipeline import build_features
from features.schemas import Tables
from tests.features.feature_synth import consents

AS_OF = date(2026, 11, 1)


def tx(
    rows: list[tuple[str, int, float, str | None, str | None, int | None, str | None]],
) -> pl.DataFrame:
    """rows: (customer, days before AS_OF, amount, counterparty, description, mcc, location)."""
    return pl.DataFrame(
        [
            {
                "transaction_id": f"T{i:03d}",
                "customer_id": c,
                "booked_at": datetime.combine(AS_OF - timedelta(days=d), datetime.min.time())
                + timedelta(hours=9),
                "amount": a,
                "method": "card" if mcc else "transfer",
                "counterparty_name": cp,
                "description": desc,
                "mcc": mcc,
                "location": loc,
                "country": "ES" if loc == "Malaga" else "NL",
            }
            for i, (c, d, a, cp, desc, mcc, loc) in enumerate(rows)
        ],
        schema_overrides={"mcc": pl.Int32},
    )


def customers(*ids: str) -> pl.DataFrame:
    return pl.DataFrame(
        {
            "customer_id": list(ids),
            "birth_date": [date(1985, 6, 1)] * len(ids),
            "customer_since": [date(2020, 1, 1)] * len(ids),
        }
    )


def tables(rows: list[tuple], *ids: str) -> Tables:
    return Tables.from_frames(
        transactions=tx(rows), customers=customers(*ids), consents=consents(list(ids))
    )


def test_distress_reasons() -> None:
    rows = [
        ("debt", 10, -80.0, "Intrum", "Betaling vordering", None, None),
        ("debt", 200, 1000.0, "J. Jansen", "Tikkie", None, None),
        ("gambler", 5, -50.0, "Holland Casino", None, 7995, None),
        ("gambler", 6, -50.0, "Toto", None, 7995, None),
        ("gambler", 7, -50.0, "Toto", None, 7995, None),
        ("gambler", 200, 5000.0, "J. Jansen", "Tikkie", None, None),
        ("overdrawn", 60, -300.0, "Albert Heijn", None, 5411, None),
        ("fine", 60, 300.0, "J. Jansen", "Tikkie", None, None),
        ("fine", 70, -40.0, "Toto", None, 7995, None),
    ]
    got = distress_flags(
        tables(rows, "debt", "gambler", "overdrawn", "fine"), AS_OF, FeatureConfig()
    ).collect()
    by_id = {r["customer_id"]: r for r in got.to_dicts()}
    assert by_id["debt"]["distress_reason"] == "debt_collection"
    assert by_id["gambler"]["distress_reason"] == "gambling"
    assert by_id["overdrawn"]["distress_reason"] == "below_zero"
    assert by_id["fine"] == {"customer_id": "fine", "in_distress": False, "distress_reason": None}
    lenient = FeatureConfig(distress=DistressConfig(gambling_min_count=None, days_below_zero=90))
    got = distress_flags(
        tables(rows, "debt", "gambler", "overdrawn", "fine"), AS_OF, lenient
    ).collect()
    assert got.filter(pl.col("in_distress"))["customer_id"].to_list() == ["debt"]


def test_distress_output_is_not_a_feature() -> None:
    out = build_features(
        tables([("a", 3, -80.0, "Intrum", "Betaling vordering", None, None)], "a"),
        AS_OF,
        FeatureConfig(),
    )
    assert not {"in_distress", "distress_reason"} & set(out.collect_schema().names())


def test_life_event_story() -> None:
    paydays = [date(2026 - (m > 9), (9 - m) % 12 + 1, 25) for m in range(12)]  # Oct 2026 back
    rows = [
        ("a", (AS_OF - day).days, 3000.0 if m < 3 else 2500.0, "Philips", "SALARIS", None, None)
        for m, day in enumerate(paydays)
    ]
    rows += [
        ("a", 40, 290.0, "Sociale Verzekeringsbank", "KINDERBIJSLAG", None, None),
        (
            "a",
            12,
            9000.0,
            "Notariskantoor Van Dijk",
            "NALATENSCHAP",
            None,
            None,
        ),  # 3.4 months of income, below the absolute threshold
        ("a", 3, -15.0, "HMSHost Schiphol", None, 5812, "Schiphol"),
        ("a", 2, -40.0, "Mercadona", None, 5411, "Malaga"),
        ("a", 100, -40.0, "Mercadona", None, 5411, "Malaga"),
    ]
    row = build_features(tables(rows, "a"), AS_OF, FeatureConfig()).collect().row(0, named=True)
    income = (3 * 3000.0 + 9 * 2500.0) / 12
    assert row["income_monthly_amount"] == pytest.approx(income)
    assert row["salary_detected"] and row["salary_months_count_365d"] == 12
    assert row["salary_increase_90d"] and row["salary_change_ratio_90d"] == pytest.approx(0.2)
    assert row["child_benefit_started_90d"] and row["days_since_first_child_benefit"] == 40
    assert row["large_inflow_30d"] and row["large_inflow_amount_max_30d"] == 9000.0
    assert row["large_inflow_income_ratio_30d"] == pytest.approx(9000.0 / income)
    assert row["days_since_last_large_inflow"] == 12
    assert row["first_airport_30d"] and not row["first_abroad_30d"]
    assert row["days_since_last_abroad"] == 2 and row["days_since_first_abroad"] == 100
