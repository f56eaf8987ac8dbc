"""The objection register: objections to payment-data marketing recorded the moment the
customer makes them, between two deliveries of the bank's data (GDPR art. 21).

One table of the ledger database (`serving.ledger.objections`, created with the others):
`objections` holds the customer id, when the objection was recorded (bank local time, as the
consents table's `updated_at`) and through what (`cli` or `http`), nothing else about the
customer. Recording the same customer again moves `recorded_at` forward.

The rule that decides what a register row means is `features.consent.with_objections` (a
register objection wins unless the bank's consent row is newer); this module only stores and
reads the rows. Recording (`serving.online_store.record_objection`) also deletes the
customer's online profile at once.
"""

from __future__ import annotations

from datetime import datetime
from pathlib import Path

import polars as pl
import sqlalchemy as sa
from sqlalchemy.engine import Connection, Engine

from features.consent import REGISTER_SCHEMA
from serving import ledger as lg
from serving.ledger import objections
from serving.ledger_lock import check_reachable

SOURCES = ("cli", "http")


def record(conn: Connection, customer_id: str, at: datetime, source: str) -> None:
    """Store (or move forward) the customer's objection, in the caller's transaction."""
    if source not in SOURCES:
        raise ValueError(f"source must be one of {SOURCES}, not {source!r}")
    conn.execute(sa.delete(objections).where(objections.c.customer_id == customer_id))
    conn.execute(
        sa.insert(objections).values(customer_id=customer_id, recorded_at=at, source=source)
    )


def read_register(conn: Connection, customer_ids: list[str] | None = None) -> pl.DataFrame:
    """The register (customer_id, recorded_at), whole or for some customers (the table
    exists: the ledger was opened with `serving.ledger.locked`)."""
    stmt = sa.select(objections.c.customer_id, objections.c.recorded_at)
    if customer_ids is not None:
        if not customer_ids:
            return pl.DataFrame(schema=REGISTER_SCHEMA)
        stmt = stmt.where(objections.c.customer_id.in_(customer_ids))
    rows = conn.execute(stmt).all()
    return pl.DataFrame([tuple(r) for r in rows], schema=REGISTER_SCHEMA, orient="row")


def register_frame(ledger_url: str) -> pl.DataFrame:
    """The whole register for a batch path (`features.io.load_tables(objections=...)`).

    Read only: a ledger that does not exist yet (no SQLite file) has an empty register and is
    not created. A malformed or unreachable URL is exit 2 naming `--ledger-url / ledger.url`.
    """
    engine = lg.make_engine(ledger_url)
    try:
        if _no_file(engine):  # e.g. `propensity features` before any run: nothing recorded
            return pl.DataFrame(schema=REGISTER_SCHEMA)
        check_reachable(engine)
        return register_of(engine)
    finally:
        engine.dispose()


def _no_file(engine: Engine) -> bool:
    """An SQLite ledger whose file does not exist (reading must not create it)."""
    db = engine.url.database
    return engine.dialect.name == "sqlite" and bool(db) and not Path(str(db)).exists()


def register_of(engine: Engine) -> pl.DataFrame:
    """The whole register of an open ledger, read only (empty when there is none yet)."""
    if _no_file(engine):
        return pl.DataFrame(schema=REGISTER_SCHEMA)
    with lg.ledger_errors(engine), lg.reading(engine) as conn:
        if not sa.inspect(conn).has_table(objections.name):
            return pl.DataFrame(schema=REGISTER_SCHEMA)
        return read_register(conn)
