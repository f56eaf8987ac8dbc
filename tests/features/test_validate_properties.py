"""Property: random valid tables pass the contract; any single mutation of a required column
fails with a message that names that table and column."""

from __future__ import annotations

import tempfile
from datetime import date, datetime, timedelta
from pathlib import Path

import polars as pl
from hypothesis import given, settings
from hypothesis import strategies as st

from features.errors import ContractError
from features.io import load_tables
from features.schemas import METHODS

TODAY = date(2026, 11, 25)


@st.composite
def banks(draw: st.DrawFn) -> dict[str, pl.DataFrame]:
    n_cust = draw(st.integers(1, 8))
    ids = [f"c{i}" for i in range(n_cust)]
    n_tx = draw(st.integers(1, 30))
    cust_of = draw(st.lists(st.sampled_from(ids), min_size=n_tx, max_size=n_tx))
    amounts = draw(
        st.lists(
            st.floats(-5000, 5000, allow_nan=False).filter(lambda a: abs(a) > 0.005),
            min_size=n_tx,
            max_size=n_tx,
        )
    )
    offsets = draw(st.lists(st.integers(0, 700 * 24), min_size=n_tx, max_size=n_tx))
    methods = draw(st.lists(st.sampled_from(METHODS), min_size=n_tx, max_size=n_tx))
    start = datetime(2024, 11, 1)
    flags = st.lists(st.booleans(), min_size=n_cust, max_size=n_cust)
    return {
        "customers": pl.DataFrame(
            {
                "customer_id": ids,
                "birth_date": [date(1950, 1, 1) + timedelta(days=400 * i) for i in range(n_cust)],
                "customer_since": [date(2010, 1, 1)] * n_cust,
            }
        ),
        "transactions": pl.DataFrame(
            {
                "transaction_id": [f"t{i}" for i in range(n_tx)],
                "customer_id": cust_of,
                "booked_at": [start + timedelta(hours=h) for h in offsets],
                "amount": amounts,
                "method": methods,
            }
        ),
        "products": pl.DataFrame(
            {"customer_id": ids[:1], "product": ["savings"], "opened_at": [date(2020, 1, 1)]}
        ),
        "consents": pl.DataFrame(
            {
                "customer_id": ids,
                **{
                    c: draw(flags)
                    for c in ("payment_data_marketing", "email", "sms", "post", "phone")
                },
            }
        ),
    }


MUTATIONS = [
    ("transactions", "amount", "drop"),
    ("transactions", "amount", "text"),
    ("transactions", "booked_at", "text"),
    ("transactions", "method", "drop"),
    ("transactions", "transaction_id", "null"),
    ("transactions", "transaction_id", "duplicate"),
    ("customers", "birth_date", "text"),
    ("customers", "customer_id", "duplicate"),
    ("products", "opened_at", "text"),
    ("consents", "email", "text"),
    ("consents", "payment_data_marketing", "drop"),
]


def mutate(df: pl.DataFrame, column: str, kind: str, row: int) -> pl.DataFrame:
    row = row % df.height
    if kind == "drop":
        return df.drop(column)
    values = df[column].cast(pl.String).to_list()
    if kind == "text":
        values[row] = "not-a-value"
    elif kind == "null":
        values[row] = None
    elif kind == "duplicate":
        if df.height == 1:
            return pl.concat([df, df])
        values[row] = values[(row + 1) % df.height]
    return df.with_columns(pl.Series(column, values, pl.String))


def load(tables: dict[str, pl.DataFrame]) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        for name, df in tables.items():
            df.write_parquet(Path(tmp) / f"{name}.parquet")
        result = load_tables(Path(tmp), today=TODAY)
        assert result.n_rejected == 0, result.rejected_counts


@settings(max_examples=30, deadline=None)
@given(banks())
def test_valid_random_tables_pass(tables: dict[str, pl.DataFrame]) -> None:
    load(tables)


@settings(max_examples=40, deadline=None)
@given(banks(), st.sampled_from(MUTATIONS), st.integers(0, 100))
def test_mutated_tables_fail_naming_the_column(
    tables: dict[str, pl.DataFrame], mutation: tuple[str, str, str], row: int
) -> None:
    table, column, kind = mutation
    tables[table] = mutate(tables[table], column, kind, row)
    try:
        load(tables)
    except ContractError as exc:
        assert any(f.table == table and column in (f.column or "") for f in exc.faults), str(exc)
    else:
        raise AssertionError(f"{table}.{column} mutated by {kind} was accepted")
