"""The data as it was known at a date: what a run "as of D" may see, and nothing more.

`as_known_at(tables, as_of)` keeps only what existed before `as_of` (a day starts at 00:00
local time):
- transactions booked before `as_of`;
- customers who became customers before `as_of`;
- product holdings opened before `as_of`, with a closure on or after `as_of` removed (the
  product was still held then).

Two tables are deliberately NOT cut:
- consents: an objection is the customer's current wish and stops processing today, including
  a backtest of a past date (GDPR art. 21); replaying the old consent would profile someone who
  has since objected.
- contacts: the contact caps count contacts on both sides of the run date, so a back-dated run
  cannot create a burst of contacts next to ones already made after it.

So a run as of D on the full data and one on the data truncated at D (with no contacts after
D) see identical tables.
"""

from __future__ import annotations

from datetime import date, datetime

import polars as pl

from features.schemas import Tables


def as_known_at(tables: Tables, as_of: date) -> Tables:
    """`tables` cut at `as_of`: transactions, customers and products; consents and contacts
    unchanged (see the module docstring for why)."""
    start = datetime(as_of.year, as_of.month, as_of.day)
    closed = pl.col("closed_at")
    return tables.with_(
        transactions=tables.transactions.filter(pl.col("booked_at") < start),
        customers=tables.customers.filter(pl.col("customer_since") < as_of),
        products=tables.products.filter(pl.col("opened_at") < as_of).with_columns(
            pl.when(closed < as_of).then(closed).otherwise(None).alias("closed_at")
        ),
    )
