"""The objection gate: an objection to payment-data marketing stops profiling, not only sending.

Customers who objected, or who have no consent row at all (safe default), are removed from
every table *before* features are built, so their payments never reach a model for marketing.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

import polars as pl

from features.consent import consenting_ids, restrict
from features.schemas import Tables

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class ConsentGate:
    """The consenting customers' tables and how many customers each gate removed."""

    tables: Tables
    consenting: pl.DataFrame  # customer_id of customers who may be profiled
    objected: int
    no_consent_row: int


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
    filtered = restrict(tables, keep.lazy())
    log.info(
        "consent gate: %d objected, %d without consent row, %d may be profiled",
        counts["objected"],
        counts["no_row"],
        keep.height,
    )
    return ConsentGate(filtered, keep, int(counts["objected"]), int(counts["no_row"]))
