"""A small generated bank, loaded into memory, for the synthbank tests."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date
from pathlib import Path

import polars as pl

import synthbank

END = date(2026, 11, 1)
MONTHS = 15


@dataclass
class Bank:
    out: Path
    transactions: pl.DataFrame
    customers: pl.DataFrame
    products: pl.DataFrame
    consents: pl.DataFrame
    contacts: pl.DataFrame
    truth: pl.DataFrame

    @property
    def first_month(self) -> date:
        return self.truth["month"].min()


def make_bank(out: Path) -> Bank:
    """Generate the shared test bank into `out` and read it back."""
    synthbank.generate(customers=2000, months=MONTHS, seed=11, out=out)
    small = {
        name: pl.read_parquet(out / f"{name}.parquet")
        for name in ("customers", "products", "consents", "contacts", "truth")
    }
    return Bank(out=out, transactions=pl.read_parquet(out / "transactions"), **small)
