"""The child-savings gate uses the categorisation rule, the one definition of child benefit:
an AOW state pension from the SVB does not pass it, a kinderbijslag credit does."""

from __future__ import annotations

from datetime import date, datetime

import polars as pl

from features.schemas import Tables
from serving.config import ServingConfig
from serving.eligibility import customer_facts

AS_OF = date(2026, 11, 1)
PAYMENTS = {  # customer -> (counterparty, description, amount)
    "aow": ("SVB", "AOW uitkering november", 1450.0),
    "aow_pension": ("Sociale Verzekeringsbank", "pensioen AOW", 1450.0),
    "kinderbijslag": ("SVB", "Kinderbijslag 3e kwartaal 2026", 287.5),
    "payer_named": ("SVB Kinderbijslag", None, 287.5),
    "refund_out": ("SVB", "Kinderbijslag terugbetaling", -287.5),
}


def test_only_child_benefit_counts() -> None:
    ids = list(PAYMENTS)
    tables = Tables.from_frames(
        customers=pl.DataFrame(
            {
                "customer_id": ids,
                "birth_date": [date(1950, 1, 1)] * len(ids),
                "customer_since": [date(2000, 1, 1)] * len(ids),
            }
        ),
        transactions=pl.DataFrame(
            {
                "transaction_id": [f"t{i}" for i in range(len(ids))],
                "customer_id": ids,
                "booked_at": [datetime(2026, 10, 15, 9)] * len(ids),
                "amount": [p[2] for p in PAYMENTS.values()],
                "method": ["transfer"] * len(ids),
                "counterparty_name": [p[0] for p in PAYMENTS.values()],
                "description": [p[1] for p in PAYMENTS.values()],
            }
        ),
    )
    facts = customer_facts(tables, AS_OF, ServingConfig()).collect()
    got = dict(facts.select("customer_id", "child_benefit").iter_rows())
    assert got == {
        "aow": False,
        "aow_pension": False,
        "kinderbijslag": True,
        "payer_named": True,
        "refund_out": False,
    }
