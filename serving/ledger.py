"""The contact ledger in SQL (SQLAlchemy Core): runs, decisions and contacts.

A run is read, decided and written inside one transaction that holds a ledger-wide lock
(SQLite `BEGIN IMMEDIATE`; PostgreSQL `pg_advisory_xact_lock`), so two runs at the same time
are serialised and never together push a customer past a cap, and a crash leaves no partial
run. The default ledger is an SQLite file in the work directory; PostgreSQL by URL. For a
private schema on PostgreSQL use libpq options, e.g. `...?options=-csearch_path%3Dmyschema`.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import sqlalchemy as sa
from sqlalchemy.engine import Connection, Engine

from features.errors import PropensityError

log = logging.getLogger(__name__)

DEFAULT_LEDGER_FILE = "ledger.sqlite"
_LOCK_KEY = 0x50524F50  # "PROP": the advisory lock all selection runs take

metadata = sa.MetaData()
runs = sa.Table(
    "runs",
    metadata,
    sa.Column("run_id", sa.String(200), primary_key=True),
    sa.Column("created_at", sa.DateTime, nullable=False),
    sa.Column("as_of", sa.Date, nullable=False),
    sa.Column("config_hash", sa.String(64), nullable=False),
    sa.Column("model_versions", sa.Text, nullable=False),
    sa.Column("status", sa.String(20), nullable=False),
    sa.Column("summary", sa.Text, nullable=False),
)
decisions = sa.Table(
    "decisions",
    metadata,
    sa.Column("run_id", sa.String(200), nullable=False, index=True),
    sa.Column("customer_id", sa.String(100), nullable=False, index=True),
    sa.Column("campaign_id", sa.String(200), nullable=False),
    sa.Column("product", sa.String(100), nullable=False),
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
    sa.Column("customer_id", sa.String(100), nullable=False, index=True),
    sa.Column("product", sa.String(100), nullable=False),
    sa.Column("channel", sa.String(20), nullable=False),
    sa.Column("contacted_at", sa.DateTime, nullable=False, index=True),
    sa.Column("campaign_id", sa.String(200)),
    sa.Column("outcome", sa.String(20)),
    sa.Column("run_id", sa.String(200), index=True),
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


class RunExistsError(PropensityError):
    """A run with this id is already in the ledger (use --replace to overwrite it)."""


def ledger_url(url: str | None, work_dir: Path) -> str:
    """The explicit URL, else an SQLite file in the work directory."""
    if url:
        return url
    work_dir.mkdir(parents=True, exist_ok=True)
    return f"sqlite:///{(work_dir / DEFAULT_LEDGER_FILE).resolve()}"


def make_engine(url: str) -> Engine:
    """An engine whose transactions can take the ledger lock (see module docstring)."""
    if not url.startswith("sqlite"):
        return sa.create_engine(url, pool_pre_ping=True)
    engine = sa.create_engine(url, connect_args={"timeout": 120})

    @sa.event.listens_for(engine, "connect")
    def _no_implicit_begin(dbapi_connection, _record) -> None:  # type: ignore[no-untyped-def]
        dbapi_connection.isolation_level = None  # we emit BEGIN ourselves
        # WAL: readers (dry runs, explain) never block a run; NORMAL sync is crash-safe in WAL
        dbapi_connection.execute("PRAGMA journal_mode=WAL")
        dbapi_connection.execute("PRAGMA synchronous=NORMAL")

    @sa.event.listens_for(engine, "begin")
    def _begin_immediate(conn: Connection) -> None:
        conn.exec_driver_sql("BEGIN IMMEDIATE")

    return engine


@contextmanager
def locked(engine: Engine) -> Iterator[Connection]:
    """One transaction holding the ledger lock; tables are created inside it if missing."""
    with engine.begin() as conn:
        if conn.dialect.name == "postgresql":
            conn.execute(sa.select(sa.func.pg_advisory_xact_lock(_LOCK_KEY)))
        metadata.create_all(conn, checkfirst=True)
        yield conn


def has_ledger(engine: Engine) -> bool:
    """True when the ledger tables exist (a dry run never creates them, nor an SQLite file)."""
    url = engine.url
    if url.get_backend_name() == "sqlite" and url.database and not Path(url.database).exists():
        return False
    return sa.inspect(engine).has_table("runs")


def run_exists(conn: Connection, run_id: str) -> bool:
    return conn.execute(sa.select(runs.c.run_id).where(runs.c.run_id == run_id)).first() is not None


def ensure_new_run(conn: Connection, run_id: str) -> None:
    """RunExistsError when `run_id` is already in the ledger."""
    if run_exists(conn, run_id):
        raise RunExistsError(f"run {run_id!r} is already in the ledger (use --replace)")


def refuse_existing_run(url: str, run_id: str) -> None:
    """Fail early (before hours of work) when `run_id` is already in the ledger.

    Only a courtesy check: the authoritative one runs again inside the locked run transaction.
    """
    engine = make_engine(url)
    try:
        if has_ledger(engine):
            with engine.connect() as conn:
                ensure_new_run(conn, run_id)
    finally:
        engine.dispose()


def delete_run(conn: Connection, run_id: str) -> None:
    """Remove a run with its decisions and contacts (for --replace), in the caller's transaction."""
    for table in (decisions, contacts, runs):
        conn.execute(sa.delete(table).where(table.c.run_id == run_id))
    log.info("replaced run %s", run_id)
