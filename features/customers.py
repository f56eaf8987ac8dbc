"""Customer features: age, tenure and the products held at `as_of`."""

from __future__ import annotations

from datetime import date

import polars as pl

from features.expressions import FeatureInfo, days_before, full_years, held_on
from features.schemas import DEFAULT_PRODUCTS


def product_names(products: pl.LazyFrame, configured: tuple[str, ...] | None) -> tuple[str, ...]:
    """The configured products, or the defaults followed by any other product in the data."""
    if configured is not None:
        return configured
    found = products.select(pl.col("product").unique()).collect()["product"].to_list()
    extra = sorted(p for p in found if p is not None and p not in DEFAULT_PRODUCTS)
    return (*DEFAULT_PRODUCTS, *extra)


def customer_infos(products: tuple[str, ...]) -> list[FeatureInfo]:
    infos = [
        FeatureInfo("age_years", "age in completed years"),
        FeatureInfo("tenure_days", "days since the customer relationship started"),
        FeatureInfo("products_held_count", "number of the listed products held", None, 0),
    ]
    for p in products:
        infos.append(FeatureInfo(f"holds_{p}", f"holds product {p} at as_of", None, False))
        infos.append(
            FeatureInfo(f"days_held_{p}", f"days since the held {p} was opened; null if not held")
        )
    return infos


def customer_base(index: pl.LazyFrame, as_of: date) -> pl.LazyFrame:
    """One row per customer who was a customer before `as_of`, with age and tenure (from the
    customer index, so it also carries `cix`)."""
    return index.filter(pl.col("customer_since") < as_of).select(
        "customer_id",
        "cix",
        pl.lit(as_of, pl.Date).alias("as_of"),
        full_years(pl.col("birth_date"), as_of).alias("age_years"),
        days_before(as_of, "customer_since").alias("tenure_days"),
    )


def product_frame(products: pl.LazyFrame, as_of: date, names: tuple[str, ...]) -> pl.LazyFrame:
    """Per customer: holds_<p> and days_held_<p> at `as_of` (opened before it, not closed
    before it; the latest opening counts when a product was held more than once)."""
    held = products.filter(held_on(as_of) & pl.col("product").is_in(list(names)))
    exprs: list[pl.Expr] = []
    for p in names:
        opened = pl.col("opened_at").filter(pl.col("product") == p).max()
        exprs += [
            opened.is_not_null().alias(f"holds_{p}"),
            days_before(as_of, opened).alias(f"days_held_{p}"),
        ]
    return (
        held.group_by("customer_id")
        .agg(exprs)
        .with_columns(
            pl.sum_horizontal(pl.col(f"holds_{p}") for p in names)
            .cast(pl.Int32)
            .alias("products_held_count")
        )
    )
