"""The training sample: the same customers every night and on every machine.

Training cost grows with the rows it reads; model quality stops growing long before a bank's
size (docs/bank-sizes.md measures where). So a large bank trains on `sample_customers`
customers, drawn by the project's stable keyed hash of the customer id (`features.hashing`):
the customers with the smallest hashes. The draw does not depend on row order, the machine or
a library version, and a larger sample contains every smaller one. The same customers are
used at every snapshot (training, validation and test), and only their rows are read.
"""

from __future__ import annotations

from dataclasses import dataclass

import polars as pl

from features.hashing import stable_hash64
from features.schemas import SPECS, Tables

SAMPLE_HASH_KEY = b"propensity-training-sample-v1"


@dataclass(frozen=True)
class Sample:
    """Who is trained on: `ids` (sorted), or None for every one of the `population`."""

    population: int
    size: int
    ids: pl.Series | None

    def line(self) -> str:
        """The plan line saying what was used, e.g. for the training log."""
        if self.ids is None:
            return f"trained on all {self.population:,} customers per snapshot"
        return (
            f"trained on {self.size:,} of {self.population:,} customers per snapshot "
            "(sample_customers)"
        )


def draw_sample(customer_ids: pl.Series, size: int | None) -> Sample:
    """The `size` customers with the smallest keyed BLAKE2b-64 of their id (ties: by id);
    everyone when `size` is None or 0 or the bank has no more customers than that."""
    ids = customer_ids.cast(pl.String).drop_nulls().unique()
    if not size or ids.len() <= size:
        return Sample(ids.len(), ids.len(), None)
    hashes = pl.Series("_h", stable_hash64(ids.to_list(), SAMPLE_HASH_KEY), dtype=pl.UInt64)
    chosen = (
        pl.DataFrame({"customer_id": ids, "_h": hashes})
        .sort("_h", "customer_id")
        .head(size)["customer_id"]
        .sort()
    )
    return Sample(ids.len(), size, chosen)


def sample_tables(tables: Tables, sample: Sample) -> Tables:
    """Every table cut to the sampled customers (lazy: the scan reads only their rows)."""
    if sample.ids is None:
        return tables
    keep = pl.col("customer_id").is_in(sample.ids.implode())
    return tables.with_(**{name: getattr(tables, name).filter(keep) for name in SPECS})
