"""The objection gate: an objection to payment-data marketing stops profiling, not only sending.

Customers who objected, or who have no consent row at all (safe default), are removed from
every table *before* features are built, so their payments never reach a model for marketing.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

import polars as pl

from features.schemas import Tables

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class ConsentGate:
    """The consenting customers' tables and how many customers each gate removed."""

    tables: Tables
    consenting: pl.DataFrame  # customer_id of customers who may be profiled
    objected: int
    no_consent_row: int


def consenting_ids(tables: Tables) -> pl.LazyFrame:
    """customer_id of every customer with a consent row that does not object (one row each)."""
    return (
        tables.consents.filter(pl.col("payment_data_marketing").fill_null(False))
        .select("customer_id")
        .unique()
    )


def consent_gate(tables: Tables) -> ConsentGate:
    """Filter all five tables to consenting customers; count who was removed and why."""
    keep = consenting_ids(tables).collect()
    counts = (
        tables.customers.select("customer_id")
        .unique()
        .join(
            tables.consents.select("customer_id", "payment_data_marketing"), "customer_id", "left"
        )
        .select(
            no_row=pl.col("payment_data_marketing").is_null().sum(),
            objected=(pl.col("payment_data_marketing") == False).sum(),  # noqa: E712
        )
        .collect()
        .row(0, named=True)
    )
    lazy_keep = keep.lazy()
    filtered = Tables(
        transactions=tables.transactions.join(lazy_keep, "customer_id", "semi"),
        customers=tables.customers.join(lazy_keep, "customer_id", "semi"),
        products=tables.products.join(lazy_keep, "customer_id", "semi"),
        consents=tables.consents.join(lazy_keep, "customer_id", "semi"),
        contacts=tables.contacts.join(lazy_keep, "customer_id", "semi"),
    )
    log.info(
        "consent gate: %d objected, %d without consent row, %d may be profiled",
        counts["objected"],
        counts["no_row"],
        keep.height,
    )
    return ConsentGate(filtered, keep, int(counts["objected"]), int(counts["no_row"]))
