"""Selection rates by age band (and configured segments) per campaign: the four-fifths rule.

For each campaign the population is every consenting adult (from the first age band) scored
for its product; a
customer is selected when they won a slot (treated or control). A group's ratio is its rate
divided by the best-served group's rate; below `fairness_min_ratio` (0.8) is a warning, for
groups of at least `fairness_min_group` scored customers (smaller ones are shown, not judged).
"""

from __future__ import annotations

import itertools
from datetime import date

import polars as pl

from monitoring.config import MonitoringConfig
from serving.reasons import Reason

AGE = "age_band"


def age_band(birth_date: pl.Expr, as_of: date, bounds: tuple[int, ...]) -> pl.Expr:
    """'18-24', ..., '65+' from the age on `as_of`; 'under 18' below the first bound."""
    years = pl.lit(as_of).dt.year() - birth_date.dt.year()
    before_birthday = (pl.lit(as_of).dt.month() < birth_date.dt.month()) | (
        (pl.lit(as_of).dt.month() == birth_date.dt.month())
        & (pl.lit(as_of).dt.day() < birth_date.dt.day())
    )
    age = years - before_birthday.cast(pl.Int32)
    expr = pl.when(age < bounds[0]).then(pl.lit(f"under {bounds[0]}"))
    for lo, hi in itertools.pairwise(bounds):
        expr = expr.when(age < hi).then(pl.lit(f"{lo}-{hi - 1}"))
    return expr.otherwise(pl.lit(f"{bounds[-1]}+"))


def _segments(
    population: pl.DataFrame, features: pl.DataFrame | None, config: MonitoringConfig
) -> pl.DataFrame:
    """customer_id with one String column per segment (numeric features in quartile bands)."""
    out = population
    for name in config.fairness_segments:
        if features is None or name not in features.columns:
            continue
        col = features.select("customer_id", name)
        if col.schema[name].is_numeric():
            col = col.with_columns(
                pl.col(name).cast(pl.Float64).qcut(4, allow_duplicates=True).cast(pl.String)
            )
        out = out.join(col.with_columns(pl.col(name).cast(pl.String)), "customer_id", "left")
    return out


def selection_rates(
    decisions: pl.DataFrame,
    scores: pl.DataFrame,
    customers: pl.DataFrame,
    as_of: date,
    config: MonitoringConfig,
    features: pl.DataFrame | None = None,
) -> pl.DataFrame:
    """campaign_id, segment, grp, scored, selected, rate, ratio, warn."""
    won = decisions.filter(pl.col("outcome").is_in([Reason.SELECTED.value, Reason.CONTROL.value]))
    campaigns = decisions.select("campaign_id", "product").unique()
    people = customers.select(
        "customer_id", age_band(pl.col("birth_date"), as_of, config.age_bands).alias(AGE)
    ).filter(~pl.col(AGE).str.starts_with("under "))  # minors are never offered anything
    segmented = _segments(people, features, config)
    segs = [AGE, *[s for s in config.fairness_segments if s in segmented.columns]]
    base = (
        scores.select("customer_id", "product")
        .join(campaigns, "product")
        .join(
            won.select("customer_id", "campaign_id", sel=pl.lit(True)),
            ["customer_id", "campaign_id"],
            "left",
        )
        .join(segmented, "customer_id")  # adults only (see `people`)
    )
    parts = []
    for seg in segs:
        parts.append(
            base.group_by("campaign_id", pl.col(seg).fill_null("unknown").alias("grp"))
            .agg(scored=pl.len(), selected=pl.col("sel").fill_null(False).sum())
            .with_columns(segment=pl.lit(seg))
        )
    if not parts:
        return pl.DataFrame()
    rates = pl.concat(parts).with_columns(rate=pl.col("selected") / pl.col("scored"))
    judged = pl.col("scored") >= config.fairness_min_group
    best = pl.col("rate").filter(judged).max().over("campaign_id", "segment")
    return (
        rates.with_columns(ratio=pl.when(best > 0).then(pl.col("rate") / best))
        .with_columns(
            warn=(judged & (pl.col("ratio") < config.fairness_min_ratio)).fill_null(False)
        )
        .select("campaign_id", "segment", "grp", "scored", "selected", "rate", "ratio", "warn")
        .sort("campaign_id", "segment", "grp")
    )
