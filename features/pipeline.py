"""Customer features as of a date: the one entry point training and serving call.

Order of work: categorise the transactions booked before `as_of` (rules evaluated once per
distinct counterparty combination), drop special-category rows, then compute each feature
family from the remaining rows and join the families onto the customers of that date.
"""

from __future__ import annotations

import logging
from datetime import date

import polars as pl

from features.balance import balance_frame, balance_infos, daily_balances, opening_balances
from features.categories import RuleSet, load_ruleset
from features.config import FeatureConfig
from features.customers import customer_base, customer_infos, product_frame, product_names
from features.expressions import FeatureInfo
from features.income import income_features, income_frame, large_inflow_features, large_inflow_frame
from features.life_events import life_event_features
from features.schemas import SPECS, Tables
from features.transactions import (
    bucketed,
    categorised,
    category_features,
    category_infos,
    flow_features,
    is_special,
    narrow,
    recency_features,
)

log = logging.getLogger(__name__)

ANY_DATE = date(2000, 1, 1)  # recency expressions need a date; their names do not depend on it


def feature_infos(
    config: FeatureConfig, ruleset: RuleSet, products: tuple[str, ...]
) -> list[FeatureInfo]:
    """Every feature column in output order (after `customer_id` and `as_of`)."""
    return [
        *customer_infos(products),
        *(i for i, _ in flow_features(config)),
        *category_infos(ruleset, config),
        *(i for i, _ in recency_features(ruleset, config, ANY_DATE)),
        *balance_infos(config),
        *(i for i, _ in income_features(config)),
        *(i for i, _ in large_inflow_features(config)),
        *(i for i, _ in life_event_features(ruleset, config)),
    ]


def _features_from_rows(
    rows: pl.LazyFrame,
    daily: pl.LazyFrame,
    tables: Tables,
    as_of: date,
    config: FeatureConfig,
    ruleset: RuleSet,
    products: tuple[str, ...],
) -> pl.LazyFrame:
    """All families for one date from the narrow non-special rows and the daily balances."""
    agg = bucketed(rows, as_of, config.windows)
    totals = agg.group_by("customer_id").agg(
        *(e for _, e in flow_features(config)),
        *(e for _, e in recency_features(ruleset, config, as_of)),
    )
    income = income_frame(rows, as_of, config)
    families = [
        product_frame(tables.products, as_of, products),
        totals,
        category_features(agg, ruleset, config),
        balance_frame(daily, as_of, config),
        income,
        large_inflow_frame(rows, income, as_of, config),
    ]
    out = customer_base(tables.customers, as_of)
    for family in families:
        out = out.join(family, on="customer_id", how="left")
    infos = feature_infos(config, ruleset, products)
    fills = [pl.col(i.name).fill_null(i.fill) for i in infos if i.fill is not None]
    out = out.with_columns(fills).with_columns(
        e for _, e in life_event_features(ruleset, config)
    )
    return out.select("customer_id", "as_of", *(i.name for i in infos))


def _context(tables: Tables, config: FeatureConfig) -> tuple[RuleSet, tuple[str, ...]]:
    return load_ruleset(config), product_names(tables.products, config.products)


def build_features(tables: Tables, as_of: date, config: FeatureConfig) -> pl.LazyFrame:
    """One row per customer with `customer_since < as_of`: `customer_id`, `as_of`, then the
    features of `feature_infos`, from transactions booked and products opened before `as_of`."""
    ruleset, products = _context(tables, config)
    rows = narrow(tables.transactions, ruleset, config, as_of)
    daily = daily_balances(rows, opening_balances(tables.transactions, as_of))
    return _features_from_rows(rows, daily, tables, as_of, config, ruleset, products).sort(
        "customer_id"
    )


def build_features_many(
    tables: Tables, as_of_dates: list[date], config: FeatureConfig
) -> pl.LazyFrame:
    """One row per customer and date (same columns as `build_features`). The transactions are
    scanned and categorised once; the narrow non-special rows and the daily balances are kept
    in memory and every date aggregates from them."""
    if not as_of_dates:
        return build_features(tables, date.today(), config).clear()
    dates = sorted(set(as_of_dates))
    ruleset, products = _context(tables, config)
    rows = narrow(tables.transactions, ruleset, config, dates[-1]).collect(engine="streaming")
    log.info("categorised %d non-special transactions once for %d dates", len(rows), len(dates))
    opening = opening_balances(tables.transactions, dates[-1])
    daily = daily_balances(rows.lazy(), opening).collect(engine="streaming")
    frames = [
        _features_from_rows(rows.lazy(), daily.lazy(), tables, d, config, ruleset, products)
        for d in dates
    ]
    return pl.concat(frames).sort("as_of", "customer_id")


def special_count(tables: Tables, as_of: date, config: FeatureConfig) -> int:
    """How many transactions booked before `as_of` are special-category (and so dropped)."""
    ruleset = load_ruleset(config)
    rows = categorised(tables.transactions, ruleset, as_of).filter(is_special(ruleset))
    count = int(rows.select(pl.len()).collect(engine="streaming").item())
    log.info("dropped %d special-category transactions before %s", count, as_of)
    return count


def partition(tables: Tables, n: int, i: int) -> Tables:
    """The rows of the customers in hash partition `i` of `n` (every table)."""
    if n < 1 or not 0 <= i < n:
        raise ValueError(f"partition {i} of {n} does not exist")
    keep = (pl.col("customer_id").hash(seed=20) % n) == i
    frames = {name: getattr(tables, name).filter(keep) for name in SPECS}
    return tables.with_(**frames)
