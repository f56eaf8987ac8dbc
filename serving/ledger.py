"""The contact ledger in SQL (SQLAlchemy Core): runs, decisions and contacts.

A run is read, decided and written inside one transaction that holds a ledger-wide lock
(SQLite `BEGIN IMMEDIATE`; PostgreSQL `pg_try_advisory_xact_lock`, see `serving.ledger_lock`),
so two runs at the same time are serialised and never together push a customer past a cap,
and a crash leaves no partial run. A run is first *committed* (`published_at` null) and then
*published* (its channel files renamed into place, `published_at` set); a published run's
contacts are never removed (`--replace` is refused), and a committed run is published from
the ledger on the next start (`serving.publish`). The default ledger is an SQLite file in the
work directory; PostgreSQL by URL. For a private schema on PostgreSQL use libpq options, e.g.
`...?options=-csearch_path%3Dmyschema`. Column lengths follow `features.ids`, so both
databases accept and refuse the same ids.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import datetime
from pathlib import Path

import sqlalchemy as sa
from sqlalchemy.engine import Connection, Engine

from features.errors import PropensityError
from features.ids import CUSTOMER_ID_MAX, NAME_MAX
from serving.ledger_lock import (
    DEFAULT_LOCK_TIMEOUT,
    acquire,
    check_reachable,
    ledger_errors,
    make_engine,
    reading,
)
from serving.ledger_lock import LOCK_KEY as _LOCK_KEY  # noqa: F401  (serving.online_ledger takes it)

log = logging.getLogger(__name__)

__all__ = ["DEFAULT_LOCK_TIMEOUT", "ledger_errors", "make_engine", "reading"]

DEFAULT_LEDGER_FILE = "ledger.sqlite"

metadata = sa.MetaData()
runs = sa.Table(
    "runs",
    metadata,
    sa.Column("run_id", sa.String(NAME_MAX), primary_key=True),
    sa.Column("created_at", sa.DateTime, nullable=False),
    sa.Column("as_of", sa.Date, nullable=False),
    sa.Column("config_hash", sa.String(64), nullable=False),
    sa.Column("model_versions", sa.Text, nullable=False),
    sa.Column("status", sa.String(20), nullable=False),  # complete (committed in full)
    sa.Column("summary", sa.Text, nullable=False),
    sa.Column("published_at", sa.DateTime),  # null: committed, channel files not yet in place
)
decisions = sa.Table(
    "decisions",
    metadata,
    sa.Column("run_id", sa.String(NAME_MAX), nullable=False, index=True),
    sa.Column("customer_id", sa.String(CUSTOMER_ID_MAX), nullable=False, index=True),
    sa.Column("campaign_id", sa.String(NAME_MAX), nullable=False),
    sa.Column("product", sa.String(NAME_MAX), nullable=False),
    sa.Column("channel", sa.String(20)),
    sa.Column("outcome", sa.String(20), nullable=False),
    sa.Column("reason", sa.String(40), nullable=False),
    sa.Column("propensity", sa.Float, nullable=False),
    sa.Column("expected_value", sa.Float),
    sa.Column("model_version", sa.String(100)),
    sa.Column("reasons", sa.Text),
)
contacts = sa.Table(
    "contacts",
    metadata,
    sa.Column("customer_id", sa.String(CUSTOMER_ID_MAX), nullable=False, index=True),
    sa.Column("product", sa.String(NAME_MAX), nullable=False),
    sa.Column("channel", sa.String(20), nullable=False),
    sa.Column("contacted_at", sa.DateTime, nullable=False, index=True),
    sa.Column("campaign_id", sa.String(NAME_MAX)),
    sa.Column("outcome", sa.String(20)),
    sa.Column("run_id", sa.String(NAME_MAX), index=True),
    sa.Column("source", sa.String(10), nullable=False),  # import | run
    sa.Column("contact_key", sa.Text, index=True),  # imported rows: fingerprint of row
)
imports = sa.Table(
    "imports",
    metadata,
    sa.Column("fingerprint", sa.String(64), primary_key=True),
    sa.Column("imported_at", sa.DateTime, nullable=False),
    sa.Column("rows", sa.Integer, nullable=False),
)
# the objection register (`serving.objections`): who objected since the bank's last delivery
objections = sa.Table(
    "objections",
    metadata,
    sa.Column("customer_id", sa.String(CUSTOMER_ID_MAX), primary_key=True),
    sa.Column("recorded_at", sa.DateTime, nullable=False),  # bank local time
    sa.Column("source", sa.String(10), nullable=False),  # cli | http
)


class RunExistsError(PropensityError):
    """A run with this id is already in the ledger."""


class PublishedRunError(PropensityError):
    """`--replace` of a run whose channel files were published: its contacts may be sent."""


def ledger_url(url: str | None, work_dir: Path) -> str:
    """The explicit URL, else an SQLite file in the work directory."""
    if url:
        return url
    work_dir.mkdir(parents=True, exist_ok=True)
    return f"sqlite:///{(work_dir / DEFAULT_LEDGER_FILE).resolve()}"


@contextmanager
def locked(
    engine: Engine, holder: str = "(unnamed)", timeout: float = DEFAULT_LOCK_TIMEOUT
) -> Iterator[Connection]:
    """One transaction holding the ledger lock; tables are created (or upgraded) inside it.

    `holder` (a run id) is recorded so that a run waiting longer than `timeout` seconds
    fails with a message naming it (`LockTimeoutError`, exit 1).
    """
    with acquire(engine, holder, timeout) as conn:
        metadata.create_all(conn, checkfirst=True)
        upgrade(conn)
        yield conn


def upgrade(conn: Connection) -> None:
    """Add `runs.published_at` to a ledger written before it existed.

    Those runs were published right after their commit by the code of the time, so they are
    marked published (at their creation): recovery must never re-send an old run's files.
    """
    names = {c["name"] for c in sa.inspect(conn).get_columns("runs")}
    if "published_at" in names:
        return
    conn.exec_driver_sql("ALTER TABLE runs ADD COLUMN published_at TIMESTAMP")
    done = conn.execute(sa.text("UPDATE runs SET published_at = created_at")).rowcount
    log.warning(
        "ledger upgraded: runs.published_at added; %d earlier run(s) marked published", done
    )


def has_ledger(engine: Engine) -> bool:
    """True when the ledger tables exist (a dry run never creates them, nor an SQLite file)."""
    url = engine.url
    if url.get_backend_name() == "sqlite" and url.database and not Path(url.database).exists():
        return False
    with reading(engine) as conn:
        return sa.inspect(conn).has_table("runs")


def run_exists(conn: Connection, run_id: str) -> bool:
    return conn.execute(sa.select(runs.c.run_id).where(runs.c.run_id == run_id)).first() is not None


def published_at(conn: Connection, run_id: str) -> datetime | None:
    """When the run's channel files were published (None: not published or no such run)."""
    stmt = sa.select(runs.c.published_at).where(runs.c.run_id == run_id)
    return conn.execute(stmt).scalar_one_or_none()


def unpublished_runs(conn: Connection) -> list[str]:
    """Runs committed but never published (a kill or a failure between commit and publish)."""
    stmt = sa.select(runs.c.run_id).where(runs.c.published_at.is_(None)).order_by(runs.c.created_at)
    return list(conn.execute(stmt).scalars())


def mark_published(conn: Connection, run_id: str) -> None:
    conn.execute(sa.update(runs).where(runs.c.run_id == run_id).values(published_at=datetime.now()))


def ensure_new_run(conn: Connection, run_id: str) -> None:
    """RunExistsError when `run_id` is already in the ledger."""
    if not run_exists(conn, run_id):
        return
    hint = (
        "it was published: choose another --run-id"
        if published_at(conn, run_id) is not None
        else "it was never published: --replace redoes it"
    )
    raise RunExistsError(f"run {run_id!r} is already in the ledger ({hint})")


def prepare_replace(conn: Connection, run_id: str) -> None:
    """For --replace: remove a committed, never published run; refuse a published one.

    Published contacts are append-only: once channel files left, the caps of every later run
    depend on those contacts staying in the ledger.
    """
    if not run_exists(conn, run_id):
        return
    when = published_at(conn, run_id)
    if when is not None:
        raise PublishedRunError(
            f"--replace {run_id}: refused, run {run_id!r} was published at "
            f"{when:%Y-%m-%d %H:%M} and its contacts may have been sent; published contacts are "
            "never removed from the ledger (choose another --run-id, e.g. "
            f"{run_id}-2)"
        )
    delete_run(conn, run_id)


def refuse_existing_run(url: str, run_id: str, replace: bool = False) -> None:
    """Fail early (before hours of work) when `run_id` cannot be (re)used.

    Only a courtesy check: the authoritative one runs again inside the locked run transaction.
    """
    engine = make_engine(url)
    try:
        check_reachable(engine)
        with ledger_errors(engine):
            if not has_ledger(engine):
                return
            with reading(engine) as conn:
                if not replace:
                    ensure_new_run(conn, run_id)
                elif published_at(conn, run_id) is not None:
                    prepare_replace(conn, run_id)  # raises; never deletes a published run
    finally:
        engine.dispose()


def delete_run(conn: Connection, run_id: str) -> None:
    """Remove an unpublished run with its decisions and contacts, in the caller's transaction."""
    for table in (decisions, contacts, runs):
        conn.execute(sa.delete(table).where(table.c.run_id == run_id))
    log.info("replaced run %s (committed, never published)", run_id)
