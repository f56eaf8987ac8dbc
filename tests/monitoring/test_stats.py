"""Uplift statistics: the delta-method (Katz) interval, pooling strata, the detectable effect,
and the interval's coverage on simulated experiments with a known effect."""

from __future__ import annotations

import math

import numpy as np
import polars as pl

from monitoring.stats import estimate


def cells(*rows: tuple[int, int, int, int], value: float | None = None) -> pl.DataFrame:
    frame = pl.DataFrame(rows, schema=["n_t", "x_t", "n_c", "x_c"], orient="row")
    return frame.with_columns(value=pl.lit(value, pl.Float64)) if value is not None else frame


def test_one_group_matches_katz_by_hand() -> None:
    u = estimate(cells((1000, 80, 1000, 50), value=10.0), final=True)
    assert u.treated_rate == 0.08 and u.control_rate == 0.05
    assert math.isclose(u.uplift_rel, 0.6) and math.isclose(u.uplift_abs, 0.03)
    se = math.sqrt(1 / 80 - 1 / 1000 + 1 / 50 - 1 / 1000)
    assert math.isclose(u.ci_low, math.exp(math.log(1.6) - 1.959964 * se) - 1, rel_tol=1e-5)
    assert math.isclose(u.ci_high, math.exp(math.log(1.6) + 1.959964 * se) - 1, rel_tol=1e-5)
    assert math.isclose(u.incremental_conversions, 30.0)
    assert math.isclose(u.incremental_value, 300.0)
    # detectable: (1.96 + 0.84) * sqrt(p(1-p)(1/n_t + 1/n_c)) / p at p = 0.05
    mde = (1.959964 + 0.841621) * math.sqrt(0.05 * 0.95 * (2 / 1000)) / 0.05
    assert math.isclose(u.mde_rel, mde, rel_tol=1e-5)


def test_no_control_conversion_gives_no_ratio() -> None:
    u = estimate(cells((100, 5, 100, 0)), final=False)
    assert u.uplift_rel is None and u.ci_low is None and u.mde_rel is None
    assert u.uplift_abs == 0.05 and u.final is False
    empty = estimate(cells((0, 0, 10, 1)), final=True)
    assert empty.treated_n == 0 and empty.treated_rate is None


def test_pooling_standardises_the_control_to_the_treated_mix() -> None:
    # two campaigns, no effect in either, very different base rates and control shares:
    # naive pooling would show a large fake effect, standardisation shows none
    u = estimate(cells((900, 180, 100, 20), (100, 2, 900, 18)), final=True)
    naive = (182 / 1000) / (38 / 1000) - 1
    assert naive > 3
    assert math.isclose(u.uplift_rel, 0.0, abs_tol=1e-12)
    assert u.ci_low < 0 < u.ci_high


def test_interval_covers_the_true_effect_about_95_percent() -> None:
    rng = np.random.default_rng(7)
    covered = {0.0: 0, 0.5: 0}
    trials = 2000
    for effect in covered:
        p_c = 0.04
        for _ in range(trials):
            x_t = rng.binomial(3000, p_c * (1 + effect))
            x_c = rng.binomial(1500, p_c)
            u = estimate(cells((3000, int(x_t), 1500, int(x_c))), final=True)
            covered[effect] += u.ci_low <= effect <= u.ci_high
    for effect, n in covered.items():
        assert 0.93 <= n / trials <= 0.97, (effect, n / trials)
