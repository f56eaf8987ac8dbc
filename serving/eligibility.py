"""Who may be offered what: age, products held, responsible lending, child benefit.

Per-customer facts are computed once as of the run date; the gate itself is one `pl.when`
chain in `serving.decide` so every candidate gets exactly one, first-failing reason code.
"""

from __future__ import annotations

from datetime import date, timedelta

import polars as pl

from features.categories import child_benefit_flags, load_ruleset
from features.config import FeatureConfig
from features.distress import distress_flags
from features.expressions import full_years, held_on
from features.schemas import Tables
from serving.config import ServingConfig


def held_products(tables: Tables, as_of: date) -> pl.LazyFrame:
    """(customer_id, product) held on `as_of` (`features.expressions.held_on`, the one rule)."""
    return (
        tables.products.filter(held_on(as_of))
        .select("customer_id", "product")
        .unique()
        .with_columns(holds=pl.lit(True))
    )


def customer_facts(
    tables: Tables,
    as_of: date,
    config: ServingConfig,
    feature_config: FeatureConfig | None = None,
) -> pl.LazyFrame:
    """customer_id, age, is_current, child_benefit: the facts the gates and channel rules use.

    A current customer holds a product on `as_of` or has a transaction in the
    `current_customer_days` days before it. Child benefit is the categorisation rule's
    (`features.categories.child_benefit_flags`, the one definition) in the last
    `child_benefit_days` days.
    """
    start = as_of - timedelta(days=config.current_customer_days)
    day = pl.col("booked_at").dt.date()
    recent = (
        tables.transactions.filter((day < as_of) & (day >= start))
        .select("customer_id")
        .unique()
        .with_columns(recent_txn=pl.lit(True))
    )
    ruleset = load_ruleset(feature_config or FeatureConfig())
    cb_start = as_of - timedelta(days=config.child_benefit_days)
    benefit = child_benefit_flags(tables.transactions, cb_start, as_of, ruleset)
    active = held_products(tables, as_of).select("customer_id").unique()
    active = active.with_columns(active_product=pl.lit(True))
    return (
        tables.customers.select("customer_id", age=full_years(pl.col("birth_date"), as_of))
        .unique("customer_id")
        .join(recent, "customer_id", "left")
        .join(benefit, "customer_id", "left")
        .join(active, "customer_id", "left")
        .select(
            "customer_id",
            "age",
            is_current=pl.col("recent_txn").fill_null(False)
            | pl.col("active_product").fill_null(False),
            child_benefit=pl.col("child_benefit").fill_null(False),
        )
    )


def distress_frame(
    tables: Tables, as_of: date, config: ServingConfig, feature_config: FeatureConfig | None = None
) -> pl.LazyFrame:
    """customer_id, in_distress from `features.distress` (responsible lending for credit).

    The serving config's distress thresholds replace those of the feature config.
    """
    fc = (feature_config or FeatureConfig()).model_copy(update={"distress": config.distress})
    return distress_flags(tables, as_of, fc).select(
        "customer_id", pl.col("in_distress").fill_null(False)
    )
