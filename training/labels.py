"""Who is in a product's training population at snapshot T, and did they open it in [T, T+H)?

Population at T: customers since before T, adult enough for the product (`min_age` on T), who
do not hold the product at T (opened before T and not closed before T). Label 1 when they
open the product on a day in [T, T + horizon). Customers who objected to payment-data
marketing are removed from all tables before anything else (`consenting_tables`).
"""

from __future__ import annotations

from datetime import date, timedelta

import polars as pl

from features.expressions import full_years, held_on
from features.schemas import Tables
from models.products import ProductSpec

LABEL_SCHEMA = {"customer_id": pl.String, "as_of": pl.Date, "label": pl.Int8}


def _one_snapshot(
    tables: Tables, spec: ProductSpec, as_of: date, horizon_days: int
) -> pl.LazyFrame:
    end = as_of + timedelta(days=horizon_days)
    rows = tables.products.filter(pl.col("product") == spec.name)
    holders = rows.filter(held_on(as_of)).select("customer_id")
    openers = (
        rows.filter((pl.col("opened_at") >= as_of) & (pl.col("opened_at") < end))
        .select("customer_id")
        .unique()
        .with_columns(label=pl.lit(1, pl.Int8))
    )
    return (
        tables.customers.filter(
            (pl.col("customer_since") < as_of)
            & (full_years(pl.col("birth_date"), as_of) >= spec.min_age)
        )
        .select("customer_id")
        .join(holders, on="customer_id", how="anti")
        .join(openers, on="customer_id", how="left")
        .select(
            pl.col("customer_id"),
            pl.lit(as_of, pl.Date).alias("as_of"),
            pl.col("label").fill_null(0).cast(pl.Int8),
        )
    )


def build_labels(
    tables: Tables, spec: ProductSpec, as_of_dates: list[date], horizon_days: int
) -> pl.LazyFrame:
    """(customer_id, as_of, label) for every snapshot date; call on consenting tables."""
    if not as_of_dates:
        return pl.LazyFrame(schema=LABEL_SCHEMA)
    return pl.concat([_one_snapshot(tables, spec, d, horizon_days) for d in as_of_dates])
