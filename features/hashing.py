"""The project's stable hash: keyed BLAKE2b-64 of UTF-8 text, defined here (not by a dataframe
library) so a customer lands in the same bucket, partition and control draw on every machine and
after every library upgrade. One home: `serving` (control draws, customer buckets) imports it.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence

import numpy as np
import polars as pl

BUCKET_HASH_KEY = b"propensity-bucket-v1"


def stable_hash64(texts: Sequence[str], key: bytes) -> list[int]:
    """Keyed BLAKE2b-64 of each text's UTF-8 bytes, big-endian: the project's stable hash
    (the same on every machine and library version; control draws and customer buckets)."""
    return [
        int.from_bytes(hashlib.blake2b(t.encode(), digest_size=8, key=key).digest(), "big")
        for t in texts
    ]


def bucket_of(customer_ids: Sequence[str], n: int) -> np.ndarray:
    """Bucket number in [0, n) of each customer: keyed BLAKE2b-64 of the UTF-8 id, mod n."""
    hashes = stable_hash64(customer_ids, BUCKET_HASH_KEY)
    return np.array([h % n for h in hashes], dtype=np.int64)


def bucket_expr(column: str, n: int) -> pl.Expr:
    """`bucket_of` as a polars expression over a string column (null stays null). Each batch
    hashes only its distinct ids (Python-level hashing per row would dominate a large scan),
    then maps them back with a join."""

    def buckets(ids: pl.Series) -> pl.Series:
        distinct = ids.drop_nulls().unique()
        table = pl.DataFrame(
            {"v": distinct, "b": bucket_of(distinct.to_list(), n)},
            schema={"v": ids.dtype, "b": pl.Int64},
        )
        looked = pl.DataFrame({"v": ids}).join(table, on="v", how="left", maintain_order="left")
        return looked["b"]

    return pl.col(column).map_batches(buckets, return_dtype=pl.Int64, is_elementwise=True)
