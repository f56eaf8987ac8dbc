"""The objection filter, shared by training and serving: an objection to payment-data marketing
stops profiling, not only sending (GDPR art. 21).

Customers who objected, or who have no consent row at all (the safe default), are removed from
every table before features are built, so their payments never reach a model for marketing.
"""

from __future__ import annotations

import polars as pl

from features.schemas import SPECS, Tables


def consenting_ids(tables: Tables) -> pl.LazyFrame:
    """customer_id of every customer with a consent row that does not object (one row each)."""
    return (
        tables.consents.filter(pl.col("payment_data_marketing").fill_null(False))
        .select("customer_id")
        .unique()
    )


def restrict(tables: Tables, keep: pl.LazyFrame) -> Tables:
    """All five tables restricted to the customers in `keep` (a frame with customer_id)."""
    frames = {n: getattr(tables, n).join(keep, on="customer_id", how="semi") for n in SPECS}
    return tables.with_(**frames)


def consenting_tables(tables: Tables) -> Tables:
    """The tables of the customers who may be profiled for marketing."""
    return restrict(tables, consenting_ids(tables))
