"""The generated bank satisfies the data contract and is byte-for-byte reproducible."""

from __future__ import annotations

import os
import subprocess
from datetime import date
from pathlib import Path

import polars as pl
import pytest
from synthbank_world import END, Bank
from typer.testing import CliRunner

import synthbank
from features.errors import ConfigError
from features.schemas import METHODS, SPECS
from propensity.cli import app
from synthbank.generate import CHUNK

TRUTH = {"customer_id": pl.String, "product": pl.String, "month": pl.Date, "p_open": pl.Float64}


def _files(root: Path) -> dict[str, bytes]:
    return {str(p.relative_to(root)): p.read_bytes() for p in sorted(root.rglob("*.parquet"))}


def test_same_seed_same_bytes_other_seed_other_bytes(tmp_path: Path) -> None:
    for name, seed in (("a", 5), ("b", 5), ("c", 6)):
        synthbank.generate(customers=300, months=12, seed=seed, out=tmp_path / name)
    a, b, c = (_files(tmp_path / n) for n in "abc")
    assert len(a) == 6 and a.keys() == b.keys() == c.keys()
    assert a == b
    assert all(a[k] != c[k] for k in a)


class _Interrupt(Exception):
    pass


def _interrupt_after(chunks: int):
    def progress(done: int, total: int) -> None:
        if done >= chunks:
            raise _Interrupt

    return progress


def test_an_interrupted_run_leaves_the_output_as_it_was(tmp_path: Path) -> None:
    """Generation stopped half-way (an error, Ctrl-C) must not leave a bank that loads as if
    complete: a new directory is not created, an existing bank keeps its earlier bytes, the
    half-written staging directory is removed, and a staging directory left by a hard kill is
    replaced by the next run."""
    fresh, kept = tmp_path / "fresh", tmp_path / "kept"
    with pytest.raises(_Interrupt):
        synthbank.generate(CHUNK + 10, 2, 1, fresh, progress=_interrupt_after(1))
    assert not fresh.exists()
    synthbank.generate(customers=40, months=2, seed=1, out=kept)
    before = _files(kept)
    with pytest.raises(_Interrupt):
        synthbank.generate(CHUNK + 10, 2, 2, kept, progress=_interrupt_after(1))
    assert _files(kept) == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["kept"]
    dead = subprocess.Popen(["true"])
    dead.wait()  # its pid names a process that no longer runs
    for name in (".kept.partial", f".kept.{dead.pid}.partial"):  # older and current naming
        killed = tmp_path / name / "transactions"
        killed.mkdir(parents=True)
        (killed / "part-00007.parquet").write_bytes(b"half a file")
    running = tmp_path / f".kept.{os.getppid()}.partial"  # another generation, still running
    (running / "transactions").mkdir(parents=True)
    synthbank.generate(customers=40, months=2, seed=2, out=kept)
    assert _files(kept) != before and len(_files(kept)) == 6
    assert sorted(p.name for p in tmp_path.iterdir()) == [running.name, "kept"]


def test_a_chunk_does_not_depend_on_the_others(tmp_path: Path) -> None:
    """Chunks have a fixed size and their own random stream: adding customers leaves the
    first chunk's transactions unchanged (so the output cannot depend on the machine)."""
    small, large = tmp_path / "small", tmp_path / "large"
    synthbank.generate(customers=CHUNK, months=2, seed=3, out=small)
    synthbank.generate(customers=CHUNK + 50, months=2, seed=3, out=large)
    first = "transactions/part-00000.parquet"
    assert (small / first).read_bytes() == (large / first).read_bytes()
    assert len(list((large / "transactions").glob("*.parquet"))) == 2


def test_every_column_has_the_contract_dtype(bank: Bank) -> None:
    for name, spec in SPECS.items():
        frame = getattr(bank, name)
        assert dict(frame.schema) == spec.schema, name
    assert dict(bank.truth.schema) == TRUTH
    parts = sorted((bank.out / "transactions").glob("part-*.parquet"))
    assert parts and all(pl.read_parquet_schema(p) == SPECS["transactions"].schema for p in parts)


def test_keys_unique_and_values_in_contract_sets(bank: Bank) -> None:
    tx = bank.transactions
    assert tx["transaction_id"].n_unique() == tx.height
    assert bank.customers["customer_id"].n_unique() == bank.customers.height
    assert bank.products.select("customer_id", "product", "opened_at").is_unique().all()
    assert (tx["amount"] != 0).all()
    assert set(tx["method"].unique()) <= set(METHODS)
    assert set(tx["customer_id"].unique()) <= set(bank.customers["customer_id"])
    assert set(bank.contacts["outcome"].drop_nulls().unique()) <= {
        "accepted",
        "declined",
        "no_response",
    }


def test_nothing_dated_on_or_after_end(bank: Bank) -> None:
    end = pl.lit(END)
    assert bank.transactions.filter(pl.col("booked_at").dt.date() >= end).height == 0
    assert bank.products.filter(
        (pl.col("opened_at") >= end) | (pl.col("closed_at") >= end)
    ).is_empty()
    assert bank.contacts.filter(pl.col("contacted_at").dt.date() >= end).is_empty()
    assert bank.consents.filter(pl.col("updated_at").dt.date() >= end).is_empty()
    assert (bank.customers["customer_since"] < END).all()
    assert bank.truth["month"].max() < END


def test_transactions_sorted_by_customer_then_time_and_after_joining(bank: Bank) -> None:
    tx = bank.transactions
    assert tx.select("customer_id", "booked_at").equals(
        tx.select("customer_id", "booked_at").sort("customer_id", "booked_at")
    )
    joined = tx.join(bank.customers, on="customer_id")
    assert (joined["booked_at"].dt.date() >= joined["customer_since"]).all()


def test_loads_through_the_contract_loader_without_rejections(bank: Bank) -> None:
    io = pytest.importorskip("features.io")
    result = io.load_tables(bank.out, strict=True, today=date(2026, 11, 25))
    assert result.n_rejected == 0
    assert result.rows["transactions"] == bank.transactions.height


def test_cli_writes_the_tables_and_rejects_a_future_end(tmp_path: Path) -> None:
    runner = CliRunner()
    ok = runner.invoke(
        app,
        [
            "generate",
            "--customers",
            "200",
            "--months",
            "6",
            "--seed",
            "1",
            "--out",
            str(tmp_path / "b"),
        ],
    )
    assert ok.exit_code == 0, ok.output
    assert (tmp_path / "b" / "truth.parquet").exists()
    assert list((tmp_path / "b" / "transactions").glob("part-*.parquet"))
    with pytest.raises(ConfigError, match="future"):
        synthbank.generate(customers=10, months=3, seed=1, out=tmp_path / "c", end=date(2999, 1, 1))
    with pytest.raises(ConfigError, match="first day"):
        synthbank.generate(
            customers=10, months=3, seed=1, out=tmp_path / "c", end=date(2026, 10, 5)
        )
