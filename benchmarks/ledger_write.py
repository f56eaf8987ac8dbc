"""Benchmark: the ledger write of one nightly run (decisions and contacts) on SQLite and
PostgreSQL, through `serving.ledger_io.insert_frame` (COPY on PostgreSQL, executemany on
SQLite) inside the ledger lock, as `serving.batch.run_selection` writes them.

Rows shaped like a 1M-customer run (1.39 decisions per customer, 6 % of them contacts, as
`benchmarks/serving.py` measured). Prints rows, seconds and rows/s per table and database.

Run: /work/venv/bin/python benchmarks/ledger_write.py --customers 1000000 \\
        --ledger-url postgresql+psycopg://postgres@127.0.0.1:5432/test
(the PostgreSQL URL gets a schema of its own, `bench_ledger_write`, dropped first.)
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from datetime import datetime
from pathlib import Path

import numpy as np
import polars as pl
import sqlalchemy as sa

sys.path[:] = [p for p in sys.path if Path(p or ".").resolve() != Path(__file__).parent.resolve()]

from serving import ledger as lg  # noqa: E402
from serving.ledger_io import insert_frame  # noqa: E402

SCHEMA = "bench_ledger_write"


def frames(customers: int, seed: int = 0) -> tuple[pl.DataFrame, pl.DataFrame]:
    """(decisions, contacts) of one run for `customers` customers."""
    rng = np.random.default_rng(seed)
    n = int(customers * 1.39)
    ids = [f"C{i:08d}" for i in rng.integers(0, customers, n)]
    products = np.array(["savings", "insurance", "credit_card", "child_savings"])
    outcome = np.where(rng.random(n) < 0.06, "selected", "not_selected")
    decisions = pl.DataFrame(
        {
            "run_id": "bench",
            "customer_id": ids,
            "campaign_id": [f"{p}-2026" for p in products[rng.integers(0, 4, n)]],
            "product": products[rng.integers(0, 4, n)],
            "channel": pl.Series(np.where(outcome == "selected", "email", "")),
            "outcome": outcome,
            "reason": np.where(outcome == "selected", "selected", "below_threshold"),
            "propensity": rng.random(n),
            "expected_value": rng.random(n) * 100,
            "model_version": "3",
            "reasons": pl.Series(np.where(outcome == "selected", '[{"f":"x","t":"y"}]', "")),
        }
    ).with_columns(pl.col("channel", "reasons").replace("", None))
    chosen = decisions.filter(pl.col("outcome") == "selected")
    contacts = chosen.select(
        "customer_id",
        "product",
        "channel",
        pl.lit(datetime(2026, 11, 1, 6)).alias("contacted_at"),
        "campaign_id",
        pl.lit(None, pl.String).alias("outcome"),
        "run_id",
        pl.lit("run").alias("source"),
        pl.lit(None, pl.String).alias("contact_key"),
    )
    return decisions, contacts


def fresh(url: str) -> str:
    """An empty ledger: a new SQLite file, or a PostgreSQL schema of our own."""
    if not url.startswith("postgresql"):
        return url
    engine = sa.create_engine(url)
    with engine.begin() as conn:
        conn.exec_driver_sql(f"DROP SCHEMA IF EXISTS {SCHEMA} CASCADE")
        conn.exec_driver_sql(f"CREATE SCHEMA {SCHEMA}")
    engine.dispose()
    return f"{url}{'&' if '?' in url else '?'}options=-csearch_path%3D{SCHEMA}"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--customers", type=int, default=1_000_000)
    ap.add_argument("--ledger-url", action="append", default=[], help="repeatable")
    args = ap.parse_args()
    decisions, contacts = frames(args.customers)
    with tempfile.TemporaryDirectory() as tmp:
        urls = args.ledger_url or [f"sqlite:///{Path(tmp) / 'ledger.sqlite'}"]
        print("| ledger | table | rows | seconds | rows/s |")
        print("|---|---|---|---|---|")
        for url in urls:
            engine = lg.make_engine(fresh(url))
            kind = engine.dialect.name
            with lg.locked(engine, "bench") as conn:
                for table, frame in ((lg.decisions, decisions), (lg.contacts, contacts)):
                    start = time.perf_counter()
                    insert_frame(conn, table, frame)
                    took = time.perf_counter() - start
                    print(
                        f"| {kind} | {table.name} | {frame.height:,} | {took:.1f} | "
                        f"{frame.height / took:,.0f} |"
                    )
                start = time.perf_counter()
            print(f"| {kind} | (commit) | | {time.perf_counter() - start:.1f} | |")
            engine.dispose()


if __name__ == "__main__":
    main()
