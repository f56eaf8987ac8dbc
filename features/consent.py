"""The one gate that decides who may be profiled for marketing (GDPR art. 21): an objection to
payment-data marketing stops profiling, not only sending.

Customers who objected, or who have no consent row at all (the safe default), are removed from
every table before features are built, so their payments never reach a feature, a training set
or a model for marketing. `profilable` is the gate every entry point goes through (training,
scoring, `propensity features`, notebooks); `build_features` applies the same rule
(`profilable_ids`) to its customer index, so a caller that forgets the gate still gets no
objector's row.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

import polars as pl

from features.schemas import SPECS, Tables

log = logging.getLogger(__name__)


def profilable_ids(tables: Tables) -> pl.LazyFrame:
    """customer_id of every customer with a consent row that does not object (one row each):
    the rule itself, in one place."""
    return (
        tables.consents.filter(pl.col("payment_data_marketing").fill_null(False))
        .select("customer_id")
        .unique()
    )


consenting_ids = profilable_ids  # the older name, kept for existing callers


def restrict(tables: Tables, keep: pl.LazyFrame) -> Tables:
    """All five tables restricted to the customers in `keep` (a frame with customer_id)."""
    frames = {n: getattr(tables, n).join(keep, on="customer_id", how="semi") for n in SPECS}
    return tables.with_(**frames)


@dataclass(frozen=True)
class Profilable:
    """The tables of the customers who may be profiled, and how many customers were removed
    and why (objectors appear only as these counts)."""

    tables: Tables
    consenting: pl.DataFrame  # customer_id of the customers who may be profiled
    objected: int
    no_consent_row: int

    @property
    def removed(self) -> int:
        return self.objected + self.no_consent_row


def profilable(tables: Tables) -> Profilable:
    """The gate: all five tables filtered to the customers who may be profiled for marketing,
    with the counts of customers removed because they objected or have no consent row."""
    keep = profilable_ids(tables).collect()
    consent = tables.consents.select("customer_id", "payment_data_marketing")
    counts = (
        tables.customers.select("customer_id")
        .unique()
        .join(consent, "customer_id", "left")
        .select(
            no_row=pl.col("payment_data_marketing").is_null().sum(),
            objected=pl.col("payment_data_marketing").not_().sum(),
        )
        .collect()
        .row(0, named=True)
    )
    log.info(
        "consent gate: %d objected, %d without consent row, %d may be profiled",
        counts["objected"],
        counts["no_row"],
        keep.height,
    )
    return Profilable(
        restrict(tables, keep.lazy()), keep, int(counts["objected"]), int(counts["no_row"])
    )


def consenting_tables(tables: Tables) -> Tables:
    """The tables of the customers who may be profiled for marketing (`profilable(...).tables`)."""
    return profilable(tables).tables
