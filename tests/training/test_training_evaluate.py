from __future__ import annotations

from datetime import date

import numpy as np
import polars as pl
import pytest

from training.evaluate import (
    expected_calibration_error,
    horizon_months,
    lift_and_capture,
    oracle_auc,
    oracle_probability,
    score_metrics,
)

T = date(2026, 8, 1)


def _truth() -> pl.LazyFrame:
    rows = [
        ("x", "savings", date(2026, 7, 1), 0.9),  # before the horizon
        ("x", "savings", date(2026, 8, 1), 0.1),
        ("x", "savings", date(2026, 9, 1), 0.2),
        ("x", "savings", date(2026, 10, 1), 0.5),
        ("x", "savings", date(2026, 11, 1), 0.9),  # after the horizon
        ("x", "insurance", date(2026, 8, 1), 0.9),  # another product
        ("y", "savings", date(2026, 8, 1), 0.1),  # opened in August: no later rows
    ]
    return pl.LazyFrame(rows, schema=["customer_id", "product", "month", "p_open"], orient="row")


def test_horizon_months_are_the_month_starts_inside_the_window():
    assert horizon_months(T, 90) == [date(2026, 8, 1), date(2026, 9, 1), date(2026, 10, 1)]
    assert horizon_months(date(2026, 8, 15), 30) == [date(2026, 9, 1)]
    assert horizon_months(date(2026, 12, 1), 62) == [date(2026, 12, 1), date(2027, 1, 1)]


def test_oracle_probability_combines_the_horizon_months():
    ids = pl.DataFrame({"customer_id": ["x", "y", "z"], "as_of": [T] * 3})
    p = dict(oracle_probability(_truth(), "savings", ids, T, 90).iter_rows())
    assert p["x"] == pytest.approx(1 - 0.9 * 0.8 * 0.5)
    assert p["y"] == pytest.approx(1 - 0.9**3)  # carried forward after opening
    assert p["z"] == 0.0
    auc = oracle_auc(_truth(), "savings", ids, np.array([1, 0, 0]), 90)
    assert auc == 1.0


def test_lift_and_capture_on_a_known_ranking():
    y = np.array([1, 0, 0, 0, 0, 0, 0, 0, 0, 1])
    p = np.linspace(1, 0, 10)
    assert lift_and_capture(y, p, 0.1) == (pytest.approx(5.0), pytest.approx(0.5))
    assert lift_and_capture(y, p, 1.0) == (pytest.approx(1.0), pytest.approx(1.0))


def test_ece_is_zero_when_calibrated_and_the_gap_otherwise():
    y = np.array([0, 1] * 50)
    assert expected_calibration_error(y, np.full(100, 0.5)) == pytest.approx(0.0)
    assert expected_calibration_error(np.zeros(100), np.full(100, 0.1)) == pytest.approx(0.1)
    rng = np.random.default_rng(0)
    p = rng.random(200_000) * 0.2
    assert expected_calibration_error(rng.random(200_000) < p, p) < 0.003


def test_score_metrics_report_every_key():
    rng = np.random.default_rng(1)
    p = rng.random(1000)
    y = (rng.random(1000) < p).astype(int)
    m = score_metrics(y, p)
    assert m["roc_auc"] > 0.7 and 0 < m["brier"] < 0.25
    for pct in (5, 10, 20):
        assert m[f"lift_at_{pct}pct"] > 1 and 0 < m[f"capture_at_{pct}pct"] <= 1
