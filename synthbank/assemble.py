"""Turn coded Blocks into the contract's transactions table: sort, running balance, decode."""

from __future__ import annotations

from dataclasses import fields

import numpy as np
import polars as pl
import pyarrow as pa

from features.schemas import METHODS, TRANSACTIONS
from synthbank.calendar import US_PER_DAY, Calendar
from synthbank.population import Population
from synthbank.rows import Block
from synthbank.vocab import Vocabs

FIELDS = tuple(f.name for f in fields(Block))


def customer_ids(pop: Population) -> pl.Series:
    """Zero-padded ids, so that string order equals generation order."""
    return pl.Series("customer_id", [f"C{i:08d}" for i in pop.ids], dtype=pl.String)


def account_ids(pop: Population) -> pl.Series:
    return pl.Series("account_id", [f"NL{10 + i % 89:02d}SYNB{i:010d}" for i in pop.ids])


def concat(blocks: list[Block], pop: Population) -> dict[str, np.ndarray]:
    """All rows of a chunk as coded columns, without rows from before the customer joined."""
    cols = {f: np.concatenate([getattr(b, f) for b in blocks]) for f in FIELDS}
    keep = cols["t"] >= pop.since_day[cols["cust"]] * US_PER_DAY
    return {k: v[keep] for k, v in cols.items()}


def month_end_balance(cols: dict[str, np.ndarray], pop: Population, cal: Calendar) -> np.ndarray:
    """(customers x months) balance at the end of each month, in EUR (what the bank sees)."""
    month = np.searchsorted(cal.start_us, cols["t"], side="right") - 1
    flat = cols["cust"].astype(np.int64) * cal.months + month
    net = np.bincount(flat, weights=cols["cents"], minlength=pop.n * cal.months)
    net = net.reshape(pop.n, cal.months)
    return (np.round(pop.opening * 100)[:, None] + np.cumsum(net, axis=1)) / 100.0


def _ordered(cols: dict[str, np.ndarray], base_us: int) -> dict[str, np.ndarray]:
    """Sort by customer, then booking time (ties keep generation order)."""
    seconds = (cols["t"] - base_us) // 1_000_000
    order = np.argsort((cols["cust"].astype(np.int64) << 34) | seconds, kind="stable")
    return {k: v[order] for k, v in cols.items()}


def _balance(
    cust: np.ndarray, cents: np.ndarray, opening_cents: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """Running balance per account in cents (exact integer arithmetic), and each row's
    position of its customer's first row."""
    run = np.cumsum(cents)
    first = np.flatnonzero(np.r_[True, cust[1:] != cust[:-1]])
    before = np.r_[0, run][first]
    counts = np.diff(np.r_[first, cust.size])
    return opening_cents[cust] + run - np.repeat(before, counts), np.repeat(first, counts)


def _int32(values: np.ndarray, nulls: np.ndarray) -> pa.Array:
    """An Arrow int32 array from numpy, with a packed validity bitmap (fast path of pa.array)."""
    data = pa.py_buffer(np.ascontiguousarray(values, dtype=np.int32))
    if not nulls.any():
        return pa.Array.from_buffers(pa.int32(), values.size, [None, data])
    valid = pa.py_buffer(np.packbits(~nulls, bitorder="little"))
    return pa.Array.from_buffers(pa.int32(), values.size, [valid, data])


def _coded(codes: np.ndarray, items: list[str | None]) -> pa.DictionaryArray:
    """A dictionary-encoded string column: no per-row strings are built (code 0 = null)."""
    dictionary = pa.array([*items[1:], ""], pa.string())
    indices = np.subtract(codes, 1, dtype=np.int32)
    # indices are in range by construction; skip Arrow's per-row bounds check
    return pa.DictionaryArray.from_arrays(_int32(indices, indices < 0), dictionary, safe=False)


PAIRS = np.frombuffer("".join(f"{i:02d}" for i in range(100)).encode(), dtype=np.uint16)


def transaction_ids(ids: np.ndarray, cust: np.ndarray, seq: np.ndarray) -> pa.StringArray:
    """'C00001234-000042': customer number and row number within the customer, built as one
    fixed-width byte buffer of 2-byte digit pairs (formatting 50M strings one by one would
    dominate the run time)."""
    n = cust.size
    if seq.size and seq.max() >= 1_000_000:
        raise ValueError("more than a million transactions for one customer")
    prefix = "".join(f"C{i:08d}-" for i in ids).encode()
    per_customer = np.frombuffer(prefix, dtype=np.uint16).reshape(-1, 5)
    buf = np.empty((n, 8), dtype=np.uint16)
    for k in range(5):
        buf[:, k] = per_customer[:, k][cust]
    d = seq.astype(np.int32)
    buf[:, 5] = PAIRS[d // 10_000]
    buf[:, 6] = PAIRS[(d // 100) % 100]
    buf[:, 7] = PAIRS[d % 100]
    offsets = np.arange(0, (n + 1) * 16, 16, dtype=np.int32)
    return pa.StringArray.from_buffers(n, pa.py_buffer(offsets), pa.py_buffer(buf))


def assemble(
    cols: dict[str, np.ndarray], pop: Population, vocabs: Vocabs, base_us: int
) -> pa.Table:
    """The transactions of one chunk as an Arrow table with the contract's column types."""
    cols = _ordered(cols, base_us)
    opening = np.round(pop.opening * 100).astype(np.int64)
    balance, first = _balance(cols["cust"], cols["cents"], opening)
    cust = cols["cust"]
    arrays = {
        "transaction_id": transaction_ids(pop.ids, cust, np.arange(cust.size) - first),
        "customer_id": _coded(cust + 1, [None, *customer_ids(pop).to_list()]),
        "account_id": _coded(cust + 1, [None, *account_ids(pop).to_list()]),
        "booked_at": pa.array(cols["t"], pa.timestamp("us")),
        "amount": pa.array(cols["cents"] / 100.0),
        "balance_after": pa.array(balance / 100.0),
        "method": _coded(np.add(cols["method"], 1, dtype=np.int32), [None, *METHODS]),
        "counterparty_name": _coded(cols["cp"], vocabs.counterparty.items),
        "counterparty_iban": _coded(cols["cp"], vocabs.iban()),
        "description": _coded(cols["desc"], vocabs.description.items),
        "mcc": _int32(cols["mcc"], cols["mcc"] == 0),
        "location": _coded(cols["loc"], vocabs.location.items),
        "country": _coded(cols["country"], vocabs.country.items),
    }
    assert tuple(arrays) == tuple(c.name for c in TRANSACTIONS.columns)
    return pa.table(arrays)
