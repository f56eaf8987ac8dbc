"""Pipeline shape, several dates at once, hash partitions, the catalogue and the CLI."""

from __future__ import annotations

import subprocess
import sys
from datetime import date, datetime
from pathlib import Path

import polars as pl
import pytest
from polars.testing import assert_frame_equal
from typer.testing import CliRunner

from features.balance import first_bookings
from features.catalogue import catalogue, reason_text
from features.config import FeatureConfig, Rule
from features.hashing import bucket_of
from features.pipeline import (
    build_features,
    build_features_many,
    excluded_counts,
    opening_frame,
    partition,
    special_count,
)
from features.schemas import Tables
from features.transactions import customer_index, customer_keys
from propensity.cli import app
from tests.features.feature_synth import make_frames, make_tables

DATES = [date(2025, 6, 1), date(2025, 12, 1), date(2026, 6, 15)]


@pytest.fixture(scope="module")
def tables() -> Tables:
    return make_tables(11, n_customers=30, n_rows=1500)


def test_output_columns_follow_the_catalogue(tables: Tables) -> None:
    out = build_features(tables, date(2026, 1, 1), FeatureConfig()).collect()
    names = [i.name for i in catalogue(FeatureConfig())]
    assert out.columns == ["customer_id", "as_of", *names]
    assert out.schema["as_of"] == pl.Date
    assert out["customer_id"].is_unique().all()
    since = tables.customers.collect().filter(pl.col("customer_since") < date(2026, 1, 1))
    assert sorted(out["customer_id"]) == sorted(since["customer_id"])
    assert all(
        dtype.is_numeric() or dtype == pl.Boolean
        for dtype in out.drop("customer_id", "as_of").dtypes
    )


def test_rows_come_in_customer_order_whatever_the_input_order(tables: Tables) -> None:
    """The output is sorted by `customer_id` (and, for several dates, by date first) without
    a sort of the wide result: the index numbers customers in id order and every join keeps
    the index order. Shuffled input tables must give the same frame."""
    shuffled = tables.with_(
        customers=tables.customers.collect().sample(fraction=1.0, shuffle=True, seed=3).lazy(),
        transactions=tables.transactions.collect()
        .sample(fraction=1.0, shuffle=True, seed=4)
        .lazy(),
    )
    config = FeatureConfig()
    out = build_features(shuffled, date(2026, 1, 1), config).collect()
    assert out["customer_id"].is_sorted()
    assert_frame_equal(out, build_features(tables, date(2026, 1, 1), config).collect())
    many = build_features_many(shuffled, DATES, config).collect()
    assert many.select("as_of", "customer_id").equals(
        many.select("as_of", "customer_id").sort(pl.all())
    )


def test_user_category_becomes_columns(tables: Tables) -> None:
    rule = Rule(name="tikkie", category="tikkie", description=("tikkie",))
    config = FeatureConfig(rules=(rule,))
    out = build_features(tables, date(2026, 1, 1), config).collect()
    assert "tikkie_txn_count_90d" in out.columns
    assert out["tikkie_txn_count_365d"].sum() > 0
    assert [i.name for i in catalogue(config)] == out.columns[2:]


def test_many_dates_equal_one_date_at_a_time(tables: Tables) -> None:
    config = FeatureConfig()
    many = build_features_many(tables, DATES, config).collect()
    single = pl.concat([build_features(tables, d, config).collect() for d in DATES])
    assert_frame_equal(many, single)


@pytest.mark.parametrize("n", [1, 3])
def test_partitions_union_equals_whole(tables: Tables, n: int) -> None:
    config = FeatureConfig()
    whole = build_features(tables, date(2026, 2, 1), config).collect()
    parts = [
        build_features(partition(tables, n, i), date(2026, 2, 1), config).collect()
        for i in range(n)
    ]
    assert all(p.height > 0 for p in parts)
    assert_frame_equal(pl.concat(parts).sort("customer_id"), whole)


def test_customer_keys_fall_back_to_the_id_when_hashes_collide(tables: Tables) -> None:
    """Rows join their customer on a 64-bit hash of `customer_id`; if two customers shared a
    hash, a join on it would give a row to both. Force that with a hash under which every id
    collides (all ids have the same length): the fallback must key on the id itself and give
    every transaction exactly the customer index the real hash gives."""
    index = customer_index(tables.customers, date(2026, 1, 1)).collect()
    weak = pl.col("customer_id").str.len_bytes().cast(pl.UInt64)
    assert tables.customers.select(weak.n_unique()).collect().item() == 1

    def cix_per_row(key: pl.Expr, keys: pl.DataFrame) -> pl.DataFrame:
        rows = tables.transactions.select("transaction_id", key)
        return rows.join(keys.lazy(), on="_cid").select("transaction_id", "cix").collect()

    key, keys = customer_keys(tables.customers, index, hashed=weak)
    assert keys.schema["_cid"] == pl.String
    fallback = cix_per_row(key, keys).sort("transaction_id")
    hashed = cix_per_row(*customer_keys(tables.customers, index)).sort("transaction_id")
    assert fallback.height > 0
    assert_frame_equal(fallback, hashed)


def test_partitions_follow_the_projects_stable_hash(tables: Tables) -> None:
    """`partition` keeps, in every table, exactly the customers `bucket_of` puts in that
    bucket (the project's keyed BLAKE2b, not a dataframe library's hash)."""
    ids = tables.customers.select("customer_id").collect()["customer_id"].to_list()
    want = bucket_of(ids, 3)
    for i in range(3):
        part = partition(tables, 3, i)
        kept = part.customers.collect()["customer_id"].to_list()
        assert sorted(kept) == sorted(c for c, b in zip(ids, want, strict=True) if b == i)
        booked = part.transactions.select(pl.col("customer_id").unique()).collect()
        assert set(booked["customer_id"]) <= set(kept)


def test_partition_rejects_bad_index(tables: Tables) -> None:
    with pytest.raises(ValueError, match="partition 3 of 3"):
        partition(tables, 3, 3)


def test_special_and_eligibility_only_rows_are_counted(tables: Tables) -> None:
    tx = tables.transactions.collect().filter(pl.col("booked_at") < pl.datetime(2026, 1, 1))
    counts = excluded_counts(tables, date(2026, 1, 1), FeatureConfig())
    debt = pl.col("counterparty_name").is_in(["Intrum", "Lowell Financial"])
    specials = tx.filter(pl.col("transaction_id").str.starts_with("S") & ~debt)
    assert counts == {"special": specials.height, "eligibility_only": tx.filter(debt).height}
    assert specials.height > 0 and tx.filter(debt).height > 0
    assert special_count(tables, date(2026, 1, 1), FeatureConfig()) == specials.height


def test_reason_texts_recover_dates() -> None:
    as_of = date(2026, 11, 1)
    row = {
        "large_inflow_amount_max_30d": 24000.0,
        "days_since_last_large_inflow": 29,
        "large_inflow_30d": True,
    }
    assert reason_text("large_inflow_30d", row, as_of) == "large inflow of EUR 24,000 on 2026-10-03"
    assert (
        reason_text("days_since_first_child_benefit", 40, as_of) == "child benefit started 2026-09"
    )
    assert (
        reason_text("days_since_first_airport", 3, as_of)
        == "first payment at an airport on 2026-10-29"
    )
    assert "EUR 1,234" in reason_text("salary_monthly_amount", 1234.0, as_of)
    assert reason_text("holds_savings", None, as_of).endswith("none")


def write_dir(tmp_path: Path) -> Path:
    frames, _ = make_frames(3, n_customers=10, n_rows=400)
    data = tmp_path / "data"
    data.mkdir()
    for name, frame in frames.items():
        frame.write_parquet(data / f"{name}.parquet")
    return data


def test_cli_writes_features_and_prints_catalogue(tmp_path: Path) -> None:
    data = write_dir(tmp_path)
    out = tmp_path / "f.parquet"
    result = CliRunner().invoke(
        app, ["features", str(data), "--as-of", "2026-01-01", "--out", str(out)]
    )
    assert result.exit_code == 0, result.output
    written = pl.read_parquet(out)
    tables = Tables.from_frames(
        **{
            k: pl.read_parquet(data / f"{k}.parquet")
            for k in ("transactions", "customers", "products", "consents")
        }
    )
    assert_frame_equal(written, build_features(tables, date(2026, 1, 1), FeatureConfig()).collect())
    shown = CliRunner().invoke(app, ["features", "--catalogue"], terminal_width=200)
    assert shown.exit_code == 0
    assert "salary_amount_sum_90d" in shown.output and "days_since_last_salary" in shown.output


def test_cli_bad_date_is_a_user_error(tmp_path: Path) -> None:
    cmd = [
        sys.executable,
        "-m",
        "propensity.cli",
        "features",
        str(tmp_path),
        "--as-of",
        "2026-13-01",
    ]
    result = subprocess.run(cmd, capture_output=True, text=True, check=False)
    assert result.returncode == 2
    assert "2026-13-01" in result.stderr and "Traceback" not in result.stderr


def test_opening_balance_breaks_ties_at_the_first_instant_by_transaction_id() -> None:
    """The opening scan reads only rows booked at some customer's first instant
    (`first_bookings`). A's two first rows share an instant (the lower `transaction_id`
    holds the opening), and A has a later row at B's first instant that must not count."""
    t0, t1 = datetime(2025, 1, 2, 9), datetime(2025, 1, 5, 9)
    tx = pl.DataFrame(
        {
            "transaction_id": ["T2", "T1", "T3", "T4"],
            "customer_id": ["A", "A", "A", "B"],
            "booked_at": [t0, t0, t1, t1],
            "amount": [10.0, -5.0, 1.0, 7.0],
            "balance_after": [110.0, 200.0, 0.0, 50.0],
        }
    )
    customers = pl.DataFrame(
        {"customer_id": ["A", "B"], "birth_date": [date(1980, 1, 1)] * 2}
    ).with_columns(customer_since=pl.lit(date(2024, 1, 1)))
    tables = Tables.from_frames(transactions=tx, customers=customers)
    index = customer_index(tables.customers, date(2025, 2, 1)).collect()
    customer = customer_keys(tables.customers, index)
    scanned = pl.DataFrame(
        {"cix": pl.Series([0, 0, 0, 1], dtype=pl.UInt32), "booked_at": [t0, t0, t1, t1]}
    )
    firsts = first_bookings(scanned, index.height)
    assert firsts.to_list() == [t0, t1]
    every = opening_frame(tables, date(2025, 2, 1), customer).collect().sort("cix")
    few = opening_frame(tables, date(2025, 2, 1), customer, firsts).collect().sort("cix")
    assert_frame_equal(few, every)
    assert few["opening"].to_list() == [205.0, 43.0]  # T1: 200 - (-5); T4: 50 - 7


def test_opening_balance_from_the_scan_and_from_the_tie_break_agree() -> None:
    """`build_features` takes the opening from the scanned rows where one row holds a
    customer's first instant (B) and asks the `transaction_id` tie-break only for the
    customers whose first instant several rows share (A): both give the balance before the
    first row, whatever the rows' order in the input."""
    t0, t1 = datetime(2025, 1, 2, 9), datetime(2025, 1, 5, 9)
    tx = pl.DataFrame(
        {
            "transaction_id": ["T2", "T1", "T3", "T4", "T5"],
            "customer_id": ["A", "A", "A", "B", "B"],
            "booked_at": [t0, t0, t1, t1, t0 + (t1 - t0) * 3],
            "amount": [10.0, -5.0, 1.0, 7.0, -2.0],
            "balance_after": [110.0, 200.0, 0.0, 50.0, None],
            "method": ["transfer"] * 5,
        }
    )
    customers = pl.DataFrame(
        {"customer_id": ["A", "B"], "birth_date": [date(1980, 1, 1)] * 2}
    ).with_columns(customer_since=pl.lit(date(2024, 1, 1)))
    consents = pl.DataFrame({"customer_id": ["A", "B"], "payment_data_marketing": [True] * 2})
    for order in (tx, tx.reverse()):
        tables = Tables.from_frames(transactions=order, customers=customers, consents=consents)
        out = build_features(tables, date(2025, 2, 1), FeatureConfig()).collect()
        balances = dict(zip(out["customer_id"], out["balance_last"], strict=True))
        assert balances == {"A": 205.0 + 10 - 5 + 1, "B": 43.0 + 7 - 2}
