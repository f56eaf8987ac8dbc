"""The one gate that decides who may be profiled for marketing (GDPR art. 21): an objection to
payment-data marketing stops profiling, not only sending.

Customers who objected, or who have no consent row at all (the safe default), are removed from
every table before features are built, so their payments never reach a feature, a training set
or a model for marketing. `profilable` is the gate every entry point goes through (training,
scoring, `propensity features`, notebooks); `build_features` applies the same rule
(`profilable_ids`) to its customer index, so a caller that forgets the gate still gets no
objector's row.

An objection the customer makes between two deliveries of the bank's data is recorded at once
in the objection register (`serving.objections`, in the ledger database).
`with_objections` is the one rule that lays the register over the bank's consents table: a
register objection wins unless the bank's consent row is newer. Every path applies it: the
loader (`features.io.load_tables`) for every batch path, the online snapshot and the
real-time service per micro-batch.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

import polars as pl

from features.schemas import CHANNELS, DATETIME, SPECS, Tables

log = logging.getLogger(__name__)

REGISTER_SCHEMA: dict[str, pl.DataType] = {"customer_id": pl.String(), "recorded_at": DATETIME}
"""The objection register as the rule reads it: who objected, and when (bank local time)."""


def with_objections(consents: pl.LazyFrame, register: pl.DataFrame | None) -> pl.LazyFrame:
    """The consents table with the objection register laid over it: the rule, in one place.

    A register objection (recorded at `recorded_at`) stands unless the bank's consent row was
    updated later (`updated_at` after `recorded_at`; an undated row is never later). Where it
    stands the row says: objected, no channel, `updated_at` = `recorded_at`; a customer in the
    register without a consent row gets that row (counted as objected, not as "no row").
    The bank's newer row lifts the objection: the customer consented again after objecting.
    """
    if register is None or register.is_empty():
        return consents  # unchanged, row order included
    reg = (
        register.lazy()
        .select(pl.col(n).cast(t) for n, t in REGISTER_SCHEMA.items())
        .group_by("customer_id")
        .agg(pl.col("recorded_at").max())
    )
    names = consents.collect_schema().names()
    at = pl.col("recorded_at")
    stands = at.is_not_null() & (pl.col("updated_at").is_null() | (pl.col("updated_at") <= at))
    said = ("payment_data_marketing", *CHANNELS)
    return (
        consents.join(reg, "customer_id", "full", coalesce=True)
        .with_columns(
            *(pl.when(stands).then(pl.lit(False)).otherwise(pl.col(c)).alias(c) for c in said),
            updated_at=pl.when(stands).then(at).otherwise(pl.col("updated_at")),
        )
        .select(names)
    )


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
