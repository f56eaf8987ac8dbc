"""The ledger side of real-time decisions: the event transaction, history and run rows.

Locking: on SQLite every ledger write transaction is `BEGIN IMMEDIATE`, as for a batch run.
On PostgreSQL an event takes the batch's advisory lock in *shared* mode plus an exclusive
lock on its customer: events of different customers run side by side, events of one
customer one after the other, and a batch run (exclusive) excludes them all.
"""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import datetime
from typing import Any

import polars as pl
import sqlalchemy as sa
from sqlalchemy.engine import Connection, Engine

from serving import ledger as lg
from serving.arbitration import CONTROL_DRAW_SCHEME
from serving.config import ServingConfig, config_hash
from serving.contact_policy import HISTORY_SCHEMA
from serving.ledger_io import insert_frame
from serving.online_worker import Pending
from serving.reasons import Reason

EVENT_LOCK_CLASS = 0x50524F51  # "PROQ": per-customer event locks (two-int advisory key space)


@contextmanager
def event_transaction(engine: Engine, customers: list[str]) -> Iterator[Connection]:
    """SQLite: BEGIN IMMEDIATE (the engine's). PostgreSQL: the batch lock shared, then each
    customer's event lock in sorted order (no deadlock between servers)."""
    with engine.begin() as conn:
        if conn.dialect.name == "postgresql":
            conn.execute(sa.select(sa.func.pg_advisory_xact_lock_shared(lg._LOCK_KEY)))
            # one round trip for every customer's lock; PostgreSQL evaluates a volatile
            # function of the select list after ORDER BY, so the locks are taken in order
            conn.execute(_CUSTOMER_LOCKS, {"k": EVENT_LOCK_CLASS, "ids": sorted(set(customers))})
        yield conn


_CUSTOMER_LOCKS = sa.text(
    "SELECT pg_advisory_xact_lock(:k, hashtext(c)) FROM unnest(CAST(:ids AS text[])) AS c"
    " ORDER BY c"
)


def history(conn: Connection, customers: list[str]) -> pl.DataFrame:
    """All contacts of these customers (the policy windows are applied by `decide`)."""
    c = lg.contacts.c
    rows = conn.execute(
        sa.select(c.customer_id, c.product, c.channel, c.contacted_at, c.outcome).where(
            c.customer_id.in_(customers)
        )
    ).all()
    return pl.DataFrame([tuple(r) for r in rows], schema=HISTORY_SCHEMA, orient="row")


def write_run(
    conn: Connection,
    serving: ServingConfig,
    pending: list[Pending],
    decisions: pl.DataFrame,
    scores: pl.DataFrame,
    seq: int,
) -> None:
    """One ledger run for the batch (`seq`: the engine's count): its row, every decision and
    the contacts made."""
    now = datetime.now()
    run_id = f"events-{now:%Y%m%dT%H%M%S%f}-{seq}"
    # one row: a plain insert (a frame and COPY cost more than the row)
    conn.execute(lg.runs.insert(), [_run_row(run_id, now, serving, pending, decisions, scores)])
    rows = decisions.with_columns(run_id=pl.lit(run_id), reasons=pl.col("reasons").list.join("\n"))
    insert_frame(conn, lg.decisions, rows.select([c.name for c in lg.decisions.columns]))
    insert_frame(conn, lg.contacts, _contacts(rows, pending))


def _run_row(
    run_id: str,
    now: datetime,
    serving: ServingConfig,
    pending: list[Pending],
    decisions: pl.DataFrame,
    scores: pl.DataFrame,
) -> dict[str, Any]:
    """The `runs` row: the campaigns' config hash, model versions and what was decided."""
    campaigns = sorted({c.id: c for p in pending for c in p.campaigns}.values(), key=lambda c: c.id)
    summary = {
        "source": "events",
        "events": {p.event.customer_id: p.event.event_id for p in pending},
        "counts": dict(Counter(decisions["reason"].to_list())),
        "control_draw": CONTROL_DRAW_SCHEME,
    }
    versions = dict(
        zip(scores["product"].to_list(), scores["model_version"].to_list(), strict=True)
    )
    return {
        "run_id": run_id,
        "created_at": now,
        "as_of": min(p.event.booked_at.date() for p in pending),
        "config_hash": config_hash(serving, campaigns),
        "model_versions": json.dumps(versions, sort_keys=True),
        "status": "complete",
        "published_at": now,  # answered at once: nothing left to publish
        "summary": json.dumps(summary),
    }


def _contacts(rows: pl.DataFrame, pending: list[Pending]) -> pl.DataFrame:
    """The selected offers as contacts, made at the time the event was booked."""
    booked = pl.DataFrame(
        {
            "customer_id": [p.event.customer_id for p in pending],
            "contacted_at": [p.event.booked_at for p in pending],
        },
        schema={"customer_id": pl.String, "contacted_at": pl.Datetime("us")},
    )
    return (
        rows.filter(pl.col("outcome") == Reason.SELECTED.value)
        .join(booked, "customer_id")
        .select(
            "customer_id",
            "product",
            "channel",
            "contacted_at",
            "campaign_id",
            "run_id",
            source=pl.lit("event"),
        )
    )
