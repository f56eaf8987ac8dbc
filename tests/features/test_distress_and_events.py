"""Distress flags (eligibility, not features) and hand-made life-event stories."""

from __future__ import annotations

from datetime import date, datetime, timedelta
from pathlib import Path

import polars as pl
import pytest

from features.config import DistressConfig, FeatureConfig
from features.consent import consenting_tables
from features.distress import distress_flags, distress_from_scan
from features.io import load_tables
from features.pipeline import Scanned, build_features
from features.schemas import Tables
from features.timetravel import as_known_at
from synthbank import generate
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


def _from_scan(t: Tables, config: FeatureConfig) -> tuple[pl.DataFrame, pl.DataFrame]:
    """Distress flags from the feature scan (`distress_from_scan`) and the features built."""
    found: dict[str, pl.DataFrame] = {}

    def on_scan(scanned: Scanned) -> None:
        found["flags"] = distress_from_scan(scanned, config.distress)

    features = build_features(t, AS_OF, config, on_scan=on_scan).collect()
    return found["flags"], features


@pytest.mark.parametrize(
    "config",
    [
        FeatureConfig(),
        FeatureConfig(distress=DistressConfig(gambling_min_count=None, days_below_zero=1)),
        FeatureConfig(distress=DistressConfig(window_days=30, days_below_zero=5)),
    ],
)
def test_distress_from_the_feature_scan_equals_its_own_scan(config: FeatureConfig) -> None:
    """Same flags and reasons from the rows the features scanned as from distress's own scan
    (special rows count for the balance; several bookings a day; a customer without any);
    the features are those built without the hook."""
    rows = [
        ("debt", 10, -80.0, "Intrum", "Betaling vordering", None, None),
        ("debt", 400, 1000.0, "J. Jansen", "Tikkie", None, None),
        ("gambler", 5, -50.0, "Holland Casino", None, 7995, None),
        ("gambler", 6, -50.0, "Toto", None, 7995, None),
        ("gambler", 7, -50.0, "Toto", None, 7995, None),
        ("overdrawn", 60, -300.0, "Albert Heijn", None, 5411, None),
        ("overdrawn", 60, 100.25, "J. Jansen", "Tikkie", None, None),
        ("overdrawn", 20, 250.0, "J. Jansen", "Tikkie", None, None),
        ("pharmacy", 50, -20.1, "Apotheek De Kroon", None, 5912, None),
        ("pharmacy", 300, 20.0, "J. Jansen", "Tikkie", None, None),
        ("fine", 60, 300.0, "J. Jansen", "Tikkie", None, None),
        ("fine", 70, -40.0, "Toto", None, 7995, None),
    ]
    t = tables(rows, "debt", "gambler", "overdrawn", "pharmacy", "fine", "nobody")
    flags, features = _from_scan(t, config)
    expected = distress_flags(t, AS_OF, config).collect()
    assert flags.equals(expected)
    assert flags.filter("in_distress").height >= 2
    assert features.equals(build_features(t, AS_OF, config).collect())


def test_distress_from_the_feature_scan_on_a_generated_bank(tmp_path: Path) -> None:
    generate(customers=400, months=14, seed=3, out=tmp_path)
    t = consenting_tables(load_tables(tmp_path).tables)
    as_of = date(2026, 10, 1)
    config = FeatureConfig(distress=DistressConfig(days_below_zero=3, gambling_min_count=1))
    found: dict[str, pl.DataFrame] = {}

    def on_scan(scanned: Scanned) -> None:
        found["flags"] = distress_from_scan(scanned, config.distress)

    build_features(as_known_at(t, as_of), as_of, config, on_scan=on_scan).collect()
    expected = distress_flags(as_known_at(t, as_of), as_of, config).collect()
    assert found["flags"].equals(expected)
    assert expected.filter("in_distress").height > 0
