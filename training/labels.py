"""Who is in a product's training population at snapshot T, and did they open it in [T, T+H)?

Population at T: customers since before T, adult enough for the product (`min_age` on T), who
do not hold the product at T (opened before T and not closed before T). Label 1 when they
open the product on a day in [T, T + horizon). Customers who objected to payment-data
marketing are removed from all tables before anything else (`consenting_tables`).
"""

from __future__ import annotations

from datetime import date, timedelta

import polars as pl

from features.schemas import Tables
from models.products import ProductSpec

LABEL_SCHEMA = {"customer_id": pl.String, "as_of": pl.Date, "label": pl.Int8}


def consenting_tables(tables: Tables) -> Tables:
    """Tables restricted to customers with a consent row that allows payment-data marketing.

    No consent row counts as an objection (safe default, GDPR art. 21)."""
    allowed = tables.consents.filter(pl.col("payment_data_marketing").fill_null(False)).select(
        "customer_id"
    )
    return Tables(
        transactions=tables.transactions.join(allowed, on="customer_id", how="semi"),
        customers=tables.customers.join(allowed, on="customer_id", how="semi"),
        products=tables.products.join(allowed, on="customer_id", how="semi"),
        consents=tables.consents.join(allowed, on="customer_id", how="semi"),
        contacts=tables.contacts.join(allowed, on="customer_id", how="semi"),
    )


def age_on(birth_date: pl.Expr, as_of: date) -> pl.Expr:
    """Completed years of age on `as_of` (birthday counted on the day itself)."""
    month_day = birth_date.dt.month().cast(pl.Int32) * 100 + birth_date.dt.day().cast(pl.Int32)
    before_birthday = month_day > (as_of.month * 100 + as_of.day)
    return (
        pl.lit(as_of.year, pl.Int32)
        - birth_date.dt.year().cast(pl.Int32)
        - before_birthday.cast(pl.Int32)
    )


def _one_snapshot(
    tables: Tables, spec: ProductSpec, as_of: date, horizon_days: int
) -> pl.LazyFrame:
    end = as_of + timedelta(days=horizon_days)
    rows = tables.products.filter(pl.col("product") == spec.name)
    holders = rows.filter(
        (pl.col("opened_at") < as_of)
        & (pl.col("closed_at").is_null() | (pl.col("closed_at") >= as_of))
    ).select("customer_id")
    openers = (
        rows.filter((pl.col("opened_at") >= as_of) & (pl.col("opened_at") < end))
        .select("customer_id")
        .unique()
        .with_columns(label=pl.lit(1, pl.Int8))
    )
    return (
        tables.customers.filter(
            (pl.col("customer_since") < as_of)
            & (age_on(pl.col("birth_date"), as_of) >= spec.min_age)
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
