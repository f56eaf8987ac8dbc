"""Turn coded Blocks into the contract's transactions table: sort, running balance, decode."""

from __future__ import annotations

from dataclasses import fields

import numpy as np
import polars as pl

from features.schemas import METHODS, TRANSACTIONS
from synthbank.calendar import US_PER_DAY
from synthbank.population import Population
from synthbank.rows import Block
from synthbank.vocab import Vocabs

FIELDS = tuple(f.name for f in fields(Block))


def customer_ids(pop: Population) -> pl.Series:
    """Zero-padded ids, so that string order equals generation order."""
    return pl.Series("customer_id", [f"C{i:08d}" for i in pop.ids], dtype=pl.String)


def account_ids(pop: Population) -> pl.Series:
    return pl.Series("account_id", [f"NL{10 + i % 89:02d}SYNB{i:010d}" for i in pop.ids])


def _ordered(blocks: list[Block], pop: Population, base_us: int) -> dict[str, np.ndarray]:
    """Concatenate, drop rows before the customer joined, sort by customer then time."""
    cols = {f: np.concatenate([getattr(b, f) for b in blocks]) for f in FIELDS}
    keep = cols["t"] >= pop.since_day[cols["cust"]] * US_PER_DAY
    cols = {k: v[keep] for k, v in cols.items()}
    seconds = (cols["t"] - base_us) // 1_000_000
    order = np.argsort((cols["cust"].astype(np.int64) << 34) | seconds, kind="stable")
    return {k: v[order] for k, v in cols.items()}


def _balance(cust: np.ndarray, cents: np.ndarray, opening_cents: np.ndarray) -> np.ndarray:
    """Running balance per account in cents (exact integer arithmetic)."""
    run = np.cumsum(cents)
    first = np.flatnonzero(np.r_[True, cust[1:] != cust[:-1]])
    before = np.r_[0, run][first]
    counts = np.diff(np.r_[first, cust.size])
    return opening_cents[cust] + run - np.repeat(before, counts), np.repeat(first, counts)


def assemble(blocks: list[Block], pop: Population, vocabs: Vocabs, base_us: int) -> pl.DataFrame:
    """The transactions of one chunk as a DataFrame with the contract's dtypes."""
    cols = _ordered(blocks, pop, base_us)
    opening = np.round(pop.opening * 100).astype(np.int64)
    balance, first = _balance(cols["cust"], cols["cents"], opening)
    seq = np.arange(cols["cust"].size) - first
    cust = pl.Series(cols["cust"])
    cp = pl.Series(vocabs.counterparty.items, dtype=pl.String)
    frame = pl.DataFrame(
        {
            "customer_id": customer_ids(pop).gather(cust),
            "seq": seq,
            "account_id": account_ids(pop).gather(cust),
            "booked_at": cols["t"].astype("datetime64[us]"),
            "amount": cols["cents"] / 100.0,
            "balance_after": balance / 100.0,
            "method": pl.Series(METHODS, dtype=pl.String).gather(pl.Series(cols["method"])),
            "counterparty_name": cp.gather(pl.Series(cols["cp"])),
            "counterparty_iban": pl.Series(vocabs.iban(), dtype=pl.String).gather(
                pl.Series(cols["cp"])
            ),
            "description": pl.Series(vocabs.description.items, dtype=pl.String).gather(
                pl.Series(cols["desc"])
            ),
            "mcc": cols["mcc"],
            "location": pl.Series(vocabs.location.items, dtype=pl.String).gather(
                pl.Series(cols["loc"])
            ),
            "country": pl.Series(vocabs.country.items, dtype=pl.String).gather(
                pl.Series(cols["country"])
            ),
        }
    )
    return frame.select(
        pl.concat_str(["customer_id", pl.col("seq").cast(pl.String)], separator="-").alias(
            "transaction_id"
        ),
        pl.exclude("seq", "mcc"),
        mcc=pl.when(pl.col("mcc") > 0).then(pl.col("mcc")).cast(pl.Int32),
    ).select(pl.col(c.name).cast(c.dtype) for c in TRANSACTIONS.columns)
