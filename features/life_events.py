"""Life events derived from the other features of the same row (recent starts and firsts)."""

from __future__ import annotations

import polars as pl

from features.categories import RuleSet
from features.config import FeatureConfig
from features.expressions import FeatureInfo


def life_event_features(
    ruleset: RuleSet, config: FeatureConfig
) -> list[tuple[FeatureInfo, pl.Expr]]:
    """Boolean events over the wide frame (each reads one recency or amount feature)."""
    specs: list[tuple[str, str, int, pl.Expr]] = []
    n = config.child_benefit_new_days
    if "child_benefit" in ruleset.feature_categories:
        specs.append(
            (
                f"child_benefit_started_{n}d",
                f"first child benefit payment in the last {n} days",
                n,
                pl.col("days_since_first_child_benefit") < n,
            )
        )
    t = config.first_trip_days
    for flag, meaning in (("airport", "at an airport"), ("abroad", "abroad")):
        specs.append(
            (
                f"first_{flag}_{t}d",
                f"first ever payment {meaning} in the last {t} days",
                t,
                pl.col(f"days_since_first_{flag}") < t,
            )
        )
    d = config.large_inflow_days
    specs.append(
        (
            f"large_inflow_{d}d",
            f"a large inflow in the last {d} days",
            d,
            pl.col(f"large_inflow_amount_max_{d}d").is_not_null(),
        )
    )
    return [
        (FeatureInfo(name, m, w, False), e.fill_null(False).alias(name)) for name, m, w, e in specs
    ]
