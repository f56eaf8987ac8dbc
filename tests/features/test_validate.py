"""The data contract: every table-level fault stops the load with a message naming table,
column and an example; every row-level fault is quarantined, counted and written aside."""

from __future__ import annotations

import subprocess
import sys
from datetime import date, datetime
from pathlib import Path

import polars as pl
import pytest

from features.errors import ContractError, RejectedRowsError
from features.io import load_tables

TODAY = date(2026, 11, 25)


def good_tables() -> dict[str, pl.DataFrame]:
    """A small valid bank, as typed frames."""
    customers = pl.DataFrame(
        {
            "customer_id": ["c1", "c2", "c3"],
            "birth_date": [date(1980, 1, 1), date(1990, 5, 5), date(2012, 3, 3)],
            "customer_since": [date(2000, 1, 1), date(2015, 1, 1), date(2020, 1, 1)],
        }
    )
    transactions = pl.DataFrame(
        {
            "transaction_id": ["t1", "t2", "t3", "t4"],
            "customer_id": ["c1", "c1", "c2", "c3"],
            "booked_at": [
                datetime(2026, 1, 1, 9),
                datetime(2026, 1, 2),
                datetime(2026, 2, 1),
                datetime(2026, 3, 1),
            ],
            "amount": [2500.0, -12.5, -40.0, 10.0],
            "method": ["transfer", "card", "card", "transfer"],
            "counterparty_name": ["Philips", "Albert Heijn", "Jumbo", None],
            "mcc": [None, 5411, 5411, None],
        },
        schema_overrides={"mcc": pl.Int32},
    )
    products = pl.DataFrame(
        {
            "customer_id": ["c1"],
            "product": ["savings"],
            "opened_at": [date(2021, 1, 1)],
            "closed_at": [None],
        },
        schema_overrides={"closed_at": pl.Date},
    )
    consents = pl.DataFrame(
        {
            "customer_id": ["c1", "c2"],
            "payment_data_marketing": [True, False],
            "email": [True, False],
            "sms": [False, False],
            "post": [True, True],
            "phone": [False, True],
        }
    )
    return {
        "customers": customers,
        "transactions": transactions,
        "products": products,
        "consents": consents,
    }


def write(dir_: Path, tables: dict[str, pl.DataFrame], fmt: str = "parquet") -> Path:
    dir_.mkdir(parents=True, exist_ok=True)
    for name, df in tables.items():
        if fmt == "csv":
            df.write_csv(dir_ / f"{name}.csv")
        else:
            df.write_parquet(dir_ / f"{name}.parquet")
    return dir_


def faults_of(data_dir: Path) -> list[str]:
    with pytest.raises(ContractError) as info:
        load_tables(data_dir, today=TODAY)
    return [str(f) for f in info.value.faults]


@pytest.mark.parametrize("fmt", ["parquet", "csv"])
def test_valid_tables_load_with_contract_types(tmp_path: Path, fmt: str) -> None:
    result = load_tables(write(tmp_path / "d", good_tables(), fmt), today=TODAY)
    assert result.n_rejected == 0
    tx = result.tables.transactions.collect()
    assert tx.schema["booked_at"] == pl.Datetime("us")
    assert tx.schema["mcc"] == pl.Int32
    assert tx["amount"].to_list() == [2500.0, -12.5, -40.0, 10.0]
    assert "country" in tx.columns  # optional column filled with nulls
    assert result.tables.contacts.collect().height == 0


def test_transactions_as_directory_of_parts(tmp_path: Path) -> None:
    tables = good_tables()
    tx = tables.pop("transactions")
    d = write(tmp_path / "d", tables)
    (d / "transactions").mkdir()
    tx[:2].write_parquet(d / "transactions" / "part-0.parquet")
    tx[2:].write_parquet(d / "transactions" / "part-1.parquet")
    assert load_tables(d, today=TODAY).tables.transactions.collect().height == 4


def test_missing_table(tmp_path: Path) -> None:
    tables = good_tables()
    del tables["customers"]
    (msg,) = faults_of(write(tmp_path / "d", tables))
    assert msg.startswith("customers:") and "missing" in msg


def test_file_that_is_not_parquet_or_csv(tmp_path: Path) -> None:
    tables = good_tables()
    del tables["products"]
    d = write(tmp_path / "d", tables)
    (d / "products.json").write_text("[]")
    (msg,) = faults_of(d)
    assert "products" in msg and "not a Parquet or CSV" in msg and "products.json" in msg


def test_corrupt_parquet(tmp_path: Path) -> None:
    d = write(tmp_path / "d", good_tables())
    (d / "consents.parquet").write_bytes(b"this is not parquet")
    (msg,) = faults_of(d)
    assert msg.startswith("consents:") and "not a readable Parquet" in msg


def test_missing_required_column(tmp_path: Path) -> None:
    tables = good_tables()
    tables["transactions"] = tables["transactions"].drop("method")
    (msg,) = faults_of(write(tmp_path / "d", tables))
    assert msg.startswith("transactions.method: required column missing")


def test_amount_with_decimal_comma_is_a_cast_fault(tmp_path: Path) -> None:
    tables = good_tables()
    tables["transactions"] = tables["transactions"].with_columns(
        pl.Series("amount", ["2500", "12,50", "-40", "10"])
    )
    (msg,) = faults_of(write(tmp_path / "d", tables, "csv"))
    assert msg.startswith("transactions.amount: 1 value(s) cannot be read as number")
    assert "'12,50'" in msg and "transaction_id='t2'" in msg and "row 2" in msg
    assert "Albert Heijn" not in msg  # the example names the key and the value, not the row


def test_bool_that_is_maybe(tmp_path: Path) -> None:
    tables = good_tables()
    tables["consents"] = tables["consents"].with_columns(pl.Series("email", ["true", "maybe"]))
    (msg,) = faults_of(write(tmp_path / "d", tables))
    assert msg.startswith("consents.email: 1 value(s) cannot be read as bool")
    assert "'maybe'" in msg


def test_null_and_duplicate_keys(tmp_path: Path) -> None:
    tables = good_tables()
    tables["transactions"] = tables["transactions"].with_columns(
        pl.Series("transaction_id", ["t1", "t1", "t3", "t4"])
    )
    tables["customers"] = tables["customers"].with_columns(
        pl.Series("customer_id", ["c1", "c2", None])
    )
    msgs = faults_of(write(tmp_path / "d", tables))
    assert any(
        m.startswith("transactions.transaction_id: 1 duplicate key(s)") and "'t1'" in m
        for m in msgs
    )
    assert any(m.startswith("customers.customer_id: 1 row(s) with a null key") for m in msgs)


def test_row_faults_are_quarantined_and_written_aside(tmp_path: Path) -> None:
    tables = good_tables()
    bad_tx = pl.DataFrame(
        {
            "transaction_id": ["b1", "b2", "b3", "b4", "b5", "b6"],
            "customer_id": ["c1", "c1", "c1", "c9", "c1", "c2"],
            "booked_at": [datetime(2026, 1, 1)] * 4 + [datetime(2027, 1, 1), datetime(2026, 1, 1)],
            "amount": [0.0, float("nan"), float("inf"), -1.0, -1.0, -1.0],
            "method": ["card", "card", "card", "card", "card", "telepathy"],
        }
    )
    tables["transactions"] = pl.concat([tables["transactions"], bad_tx], how="diagonal_relaxed")
    tables["products"] = pl.concat(
        [
            tables["products"],
            pl.DataFrame(
                {
                    "customer_id": ["c2"],
                    "product": ["insurance"],
                    "opened_at": [date(2022, 5, 1)],
                    "closed_at": [date(2022, 1, 1)],
                }
            ),
        ]
    )
    data_dir = write(tmp_path / "in", tables)
    before = sorted(p.name for p in data_dir.iterdir())
    out = tmp_path / "rejected"
    result = load_tables(data_dir, rejected_out=out, today=TODAY)
    assert result.rejected_counts == {
        "transactions": {
            "amount_not_finite": 2,
            "amount_zero": 1,
            "booked_in_future": 1,
            "unknown_customer": 1,
            "unknown_method": 1,
        },
        "products": {"closed_before_opened": 1},
    }
    assert result.tables.transactions.collect()["transaction_id"].to_list() == [
        "t1",
        "t2",
        "t3",
        "t4",
    ]
    written = pl.read_parquet(out / "transactions.rejected.parquet")
    # minimal rows; c2 objected and c9 has no consent row: counted, never written
    assert sorted(written["transaction_id"]) == ["b1", "b2", "b3", "b5"]
    assert written.columns == ["row", "transaction_id", "customer_id", "column", "reason", "value"]
    assert result.withheld["transactions"] == 2 and result.withheld["products"] == 1
    assert not (out / "products.rejected.parquet").exists()
    assert sorted(p.name for p in data_dir.iterdir()) == before  # input left untouched
    with pytest.raises(RejectedRowsError):
        load_tables(data_dir, strict=True, today=TODAY)


def test_cli_exit_codes_and_no_traceback(tmp_path: Path) -> None:
    tables = good_tables()
    tables["transactions"] = tables["transactions"].drop("amount")
    bad = write(tmp_path / "bad", tables)
    cmd = [sys.executable, "-m", "propensity.cli", "validate"]
    proc = subprocess.run(
        [*cmd, str(bad), "--rejected-out", str(tmp_path / "r")], capture_output=True, text=True
    )
    assert proc.returncode == 2
    assert "transactions.amount" in proc.stderr and "Traceback" not in proc.stderr
    good = write(tmp_path / "good", good_tables())
    proc = subprocess.run(
        [*cmd, str(good), "--rejected-out", str(tmp_path / "r"), "--strict"],
        capture_output=True,
        text=True,
    )
    assert proc.returncode == 0, proc.stderr


def test_duplicate_id_across_two_parts_exits_2_naming_it(tmp_path: Path) -> None:
    """The bounded uniqueness check (hashes, then the candidates confirmed by their real id)
    finds an id booked in two customer-disjoint Parquet parts."""
    tables = good_tables()
    tx = tables.pop("transactions")
    data = write(tmp_path / "d", tables)
    parts = data / "transactions"
    parts.mkdir()
    first = tx.filter(pl.col("customer_id") == "c1")
    second = tx.filter(pl.col("customer_id") != "c1").with_columns(
        pl.Series("transaction_id", ["t9", "t2"])  # t2 is also c1's id in the first part
    )
    first.write_parquet(parts / "part-00000.parquet")
    second.write_parquet(parts / "part-00001.parquet")
    proc = subprocess.run(
        [sys.executable, "-m", "propensity.cli", "validate", str(data)],
        capture_output=True,
        text=True,
        cwd=tmp_path,
    )
    assert proc.returncode == 2
    assert "transactions.transaction_id: 1 duplicate key(s)" in proc.stderr
    assert "'t2'" in proc.stderr and "Traceback" not in proc.stderr


def test_duplicate_keys_is_exact_in_several_passes() -> None:
    """Split into passes by hash share, the check finds the same duplicates, with counts, and
    a multi-column key is compared on every column."""
    from features.validate import duplicate_keys, key_hash_passes

    ids = [f"t{i}" for i in range(5000)] + ["t7", "t7", "t4999"]
    lf = pl.LazyFrame({"transaction_id": ids})
    for passes in (1, 3, 7):
        dups = duplicate_keys(lf, ["transaction_id"], passes).sort("transaction_id")
        assert dups.rows() == [("t4999", 2), ("t7", 3)]
    pairs = pl.LazyFrame({"a": ["x", "x", "y", "y"], "b": [1, 2, 1, 1]})
    assert duplicate_keys(pairs, ["a", "b"], 2).rows() == [("y", 1, 2)]
    assert key_hash_passes(10**9, budget=10**9) > 1
    assert key_hash_passes(1000, budget=10**9) == 1
