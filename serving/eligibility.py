"""Who may be offered what: age, products held, responsible lending, child benefit.

Per-customer facts are computed once as of the run date; the gate itself is one `pl.when`
chain in `serving.decide` so every candidate gets exactly one, first-failing reason code.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime, time, timedelta

import polars as pl

from features.categories import CHILD_BENEFIT, child_benefit_flags, load_ruleset
from features.config import FeatureConfig
from features.distress import distress_flags, distress_from_scan
from features.expressions import full_years, held_on
from features.pipeline import Scanned, build_features
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
    return _facts(tables, as_of, recent, benefit)


def _facts(
    tables: Tables, as_of: date, recent: pl.LazyFrame, benefit: pl.LazyFrame
) -> pl.LazyFrame:
    """The facts frame from who booked recently (`recent_txn`) and who got child benefit."""
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


def facts_from_scan(
    tables: Tables, scanned: Scanned, as_of: date, config: ServingConfig
) -> pl.DataFrame:
    """`customer_facts` from the rows a feature scan holds (`features.pipeline.Scanned`, the
    same categorisation), without reading the transactions again. The scan covers every
    customer since before `as_of` (`as_known_at` keeps no other), which is every customer
    that can be scored."""

    def since(days: int) -> pl.Expr:
        return pl.col("booked_at") >= datetime.combine(as_of - timedelta(days=days), time())

    benefit_keys = scanned.mapping.filter(pl.col("category") == CHILD_BENEFIT)["_rule_key"]
    per_cix = (
        scanned.rows.lazy()
        .group_by("cix")
        .agg(
            recent_txn=since(config.current_customer_days).any(),
            child_benefit=(
                since(config.child_benefit_days) & pl.col("_rule_key").is_in(benefit_keys.implode())
            ).any(),
        )
    )
    ids = scanned.index.lazy().select("customer_id", "cix").join(per_cix, "cix")
    recent, benefit = (
        ids.select("customer_id", "recent_txn"),
        ids.select("customer_id", CHILD_BENEFIT),
    )
    return _facts(tables, as_of, recent, benefit).collect()


@dataclass(frozen=True)
class PerCustomer:
    """One pass of the per-customer work before selection: features (consenting customers,
    as `build_features`), distress flags (as `distress_frame`) and facts (as
    `customer_facts`), the latter two from the feature scan's rows."""

    features: pl.DataFrame
    distress: pl.DataFrame
    facts: pl.DataFrame


def per_customer(
    gated: Tables, as_of: date, config: ServingConfig, feature_config: FeatureConfig
) -> PerCustomer:
    """Features, distress flags and facts of the consent-gated tables `gated` (cut at `as_of`,
    `features.timetravel.as_known_at`), reading and categorising the transactions once."""
    fc = feature_config.model_copy(update={"distress": config.distress})
    found: dict[str, pl.DataFrame] = {}

    def on_scan(scanned: Scanned) -> None:
        found["distress"] = distress_from_scan(scanned, fc.distress).select(
            "customer_id", pl.col("in_distress").fill_null(False)
        )
        found["facts"] = facts_from_scan(gated, scanned, as_of, config)

    features = build_features(gated, as_of, feature_config, on_scan=on_scan).collect()
    return PerCustomer(features, found["distress"], found["facts"])


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
