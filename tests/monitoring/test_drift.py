"""PSI against the training reference: stable data scores ~0, a shifted feature alerts, nulls
and flags have their own bins, and scores are compared like features."""

from __future__ import annotations

import json

import numpy as np
import polars as pl

from monitoring.drift import SCORE, compare, level, psi, reference_profile


def frame(rng: np.random.Generator, n: int, shift: float = 0.0, nulls: float = 0.0) -> pl.DataFrame:
    income = rng.normal(3000 + shift * 800, 800, n)
    income[rng.random(n) < nulls] = np.nan
    return pl.DataFrame(
        {
            "customer_id": [f"C{i}" for i in range(n)],
            "income": income,
            "trips": rng.poisson(1.0, n),
            "holds_savings": rng.random(n) < 0.3,
        }
    ).with_columns(pl.col("income").fill_nan(None))


def test_same_distribution_is_stable_and_a_shift_alerts() -> None:
    rng = np.random.default_rng(1)
    train = frame(rng, 20_000)
    ref = reference_profile(train, scores=rng.beta(2, 20, 20_000))
    json.dumps(ref)  # an MLflow artifact: plain JSON
    assert "customer_id" not in ref["columns"]
    assert len(ref["columns"]["income"]["edges"]) == 9  # deciles
    assert len(ref["columns"]["holds_savings"]["edges"]) == 2  # a flag: two bins (+ spare)
    same = compare(ref, frame(rng, 5_000), pl.Series(rng.beta(2, 20, 5_000)))
    assert same["psi"].max() < 0.02
    assert set(same["kind"]) == {"feature", SCORE}
    shifted = compare(ref, frame(rng, 5_000, shift=1.0), pl.Series(rng.beta(4, 20, 5_000)))
    by_name = dict(zip(shifted["name"], shifted["psi"], strict=True))
    assert by_name["income"] >= 0.25 and level(by_name["income"], 0.1, 0.25) == "alert"
    assert by_name[SCORE] >= 0.10
    assert by_name["trips"] < 0.02  # unchanged features stay quiet


def test_nulls_are_a_bin_of_their_own() -> None:
    rng = np.random.default_rng(2)
    ref = reference_profile(frame(rng, 10_000))
    assert "-1" not in ref["columns"]["income"]["shares"]
    more_nulls = compare(ref, frame(rng, 5_000, nulls=0.3))
    assert dict(zip(more_nulls["name"], more_nulls["psi"], strict=True))["income"] > 0.25


def test_psi_formula_and_empty_bins() -> None:
    assert psi({0: 0.5, 1: 0.5}, {0: 0.5, 1: 0.5}) == 0.0
    expected = (0.8 - 0.5) * np.log(0.8 / 0.5) + (0.2 - 0.5) * np.log(0.2 / 0.5)
    assert np.isclose(psi({0: 0.5, 1: 0.5}, {0: 0.8, 1: 0.2}), expected)
    assert np.isfinite(psi({0: 1.0}, {1: 1.0}))  # shares floored at 1e-4
