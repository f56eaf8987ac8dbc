"""Connecting to the ledger and taking its lock, with failures that are one clear line.

- A malformed or unreachable ledger URL (`postgres://`, an unknown role, a bad host) is a
  user mistake: `ConfigError`, exit 2, checked before any work (`check_reachable`).
- The ledger lock is waited for at most `timeout` seconds (SQLite: the busy timeout of
  `BEGIN IMMEDIATE`; PostgreSQL: `pg_try_advisory_xact_lock`, retried until the deadline),
  then `LockTimeoutError` (exit 1) names the run holding it: on PostgreSQL the holder's
  `application_name` (set to `propensity <run_id>` while it holds the lock), on SQLite a small
  `<ledger>.holder` file that every lock holder rewrites.
- Any database failure after that (connection lost, disk full) is `EnvironmentFailure` with
  the driver's first line only: no SQL text, no parameters (they may hold customer ids).
"""

from __future__ import annotations

import json
import os
import sqlite3
import time
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import datetime
from pathlib import Path

import sqlalchemy as sa
from sqlalchemy.engine import Connection, Engine

from features.errors import ConfigError, EnvironmentFailure

DEFAULT_LOCK_TIMEOUT = 60.0
LOCK_KEY = 0x50524F50  # "PROP": the advisory lock all selection runs take
_APP_PREFIX = "propensity "
_READING = "propensity_ledger_read"  # execution option of a read-only connection (`reading`)
_URL_EXAMPLE = "postgresql+psycopg://user@host:5432/db or sqlite:////abs/ledger.sqlite"
_WHERE = "--ledger-url / ledger.url"  # the flag or the config key: the message names both


class LockTimeoutError(EnvironmentFailure):
    """Another run held the ledger lock for longer than the configured timeout."""


def shown_url(url: str | sa.URL) -> str:
    """The URL without its password, for messages."""
    try:
        return sa.make_url(url).render_as_string(hide_password=True)
    except sa.exc.ArgumentError:
        return "(unparsable URL)"


def make_engine(url: str, lock_timeout: float = DEFAULT_LOCK_TIMEOUT) -> Engine:
    """An engine whose transactions can take the ledger lock; ConfigError for a bad URL."""
    try:
        parsed = sa.make_url(url)
    except sa.exc.ArgumentError:
        raise ConfigError(f"{_WHERE}: not a database URL (example: {_URL_EXAMPLE})") from None
    backend = parsed.get_backend_name()
    if backend not in ("sqlite", "postgresql"):
        raise ConfigError(
            f"{_WHERE} {shown_url(parsed)}: unsupported database {backend!r}; "
            f"use SQLite or PostgreSQL (example: {_URL_EXAMPLE})"
        )
    try:
        if backend == "postgresql":
            return sa.create_engine(
                parsed, pool_pre_ping=True, connect_args={"connect_timeout": 10}
            )
        engine = sa.create_engine(parsed, connect_args={"timeout": lock_timeout})
    except (sa.exc.NoSuchModuleError, ImportError) as exc:
        raise ConfigError(f"{_WHERE} {shown_url(parsed)}: driver not available ({exc})") from None

    @sa.event.listens_for(engine, "connect")
    def _no_implicit_begin(dbapi_connection, _record) -> None:  # type: ignore[no-untyped-def]
        dbapi_connection.isolation_level = None  # we emit BEGIN ourselves
        # WAL: readers (dry runs, explain) never block a run; NORMAL sync is crash-safe in WAL
        _wal_mode(dbapi_connection, lock_timeout)
        dbapi_connection.execute("PRAGMA synchronous=NORMAL")

    @sa.event.listens_for(engine, "begin")
    def _begin(conn: Connection) -> None:
        # every transaction takes the write lock at BEGIN (writers of other modules rely on
        # it), except reads through `reading` (dry runs, explain, the checks before a run):
        # they begin deferred and never wait for a running selection (WAL)
        deferred = conn.get_execution_options().get(_READING, False)
        conn.exec_driver_sql("BEGIN" if deferred else "BEGIN IMMEDIATE")

    return engine


def _wal_mode(dbapi_connection: sqlite3.Connection, timeout: float) -> None:
    """Switch a new SQLite ledger to WAL (once per file). Changing the journal mode answers
    "database is locked" at once, without SQLite's busy wait, while another process holds a
    lock on the new file (two first runs at the same moment), so it is retried here until
    `timeout`; a file already in WAL is left as it is."""
    deadline = time.monotonic() + timeout
    while True:
        try:
            (mode,) = dbapi_connection.execute("PRAGMA journal_mode").fetchone()
            if str(mode).lower() != "wal":
                dbapi_connection.execute("PRAGMA journal_mode=WAL")
            return
        except sqlite3.OperationalError as exc:
            if "locked" not in str(exc) or time.monotonic() >= deadline:
                raise
            time.sleep(0.05)


def first_line(exc: BaseException) -> str:
    """The driver's own first line of a database error (never SQLAlchemy's SQL/parameters)."""
    inner = getattr(exc, "orig", None) or exc
    lines = str(inner).strip().splitlines()
    return lines[0][:300] if lines else type(inner).__name__


def _dbapi_errors(engine: Engine) -> tuple[type[BaseException], ...]:
    dbapi = getattr(engine.dialect, "dbapi", None)
    base = getattr(dbapi, "Error", None)
    return (sa.exc.DBAPIError, base) if isinstance(base, type) else (sa.exc.DBAPIError,)


@contextmanager
def reading(engine: Engine) -> Iterator[Connection]:
    """A connection for reads only: on SQLite it never waits for the write lock."""
    with engine.connect() as conn:
        yield conn.execution_options(**{_READING: True})


def check_reachable(engine: Engine) -> None:
    """Connect once: an unreachable server or unknown role is exit 2 naming the URL.

    An SQLite ledger is not opened here (that would create the file, and a dry run must
    write nothing); only its directory must exist.
    """
    if engine.dialect.name == "sqlite":
        db = engine.url.database
        if db and db != ":memory:" and not Path(db).parent.is_dir():
            raise ConfigError(
                f"{_WHERE} {shown_url(engine.url)}: directory {Path(db).parent} does not exist"
            )
        return
    try:
        with engine.connect() as conn:
            conn.execute(sa.text("select 1"))
    except _dbapi_errors(engine) as exc:
        raise ConfigError(
            f"{_WHERE} {shown_url(engine.url)}: cannot connect: {first_line(exc)}"
        ) from None


@contextmanager
def ledger_errors(engine: Engine) -> Iterator[None]:
    """Turn a database failure into one line, exit 1 (disk full, connection lost, ...)."""
    try:
        yield
    except _dbapi_errors(engine) as exc:
        line = first_line(exc)
        if "disk is full" in line or "No space left" in line:
            line = f"disk full: {line}"
        raise EnvironmentFailure(f"ledger {shown_url(engine.url)}: {line}") from exc


@contextmanager
def acquire(engine: Engine, holder: str, timeout: float) -> Iterator[Connection]:
    """One transaction holding the ledger lock, waiting at most `timeout` seconds for it."""
    with engine.connect() as conn:
        try:
            trans = conn.begin()
        except sa.exc.OperationalError as exc:
            if "locked" in first_line(exc) or "busy" in first_line(exc):
                raise _timeout(timeout, _sqlite_holder(engine)) from exc
            raise
        with trans:
            if conn.dialect.name == "postgresql":
                _pg_lock(conn, holder, timeout)
            else:
                _write_sqlite_holder(engine, holder)
            yield conn


def _timeout(timeout: float, holder: str) -> LockTimeoutError:
    return LockTimeoutError(
        f"the ledger lock is held by {holder}; gave up after {timeout:g} s "
        "(wait for it to finish, or raise [serving] lock_timeout_seconds)"
    )


def _pg_lock(conn: Connection, holder: str, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    attempt = sa.select(sa.func.pg_try_advisory_xact_lock(LOCK_KEY))
    while not conn.execute(attempt).scalar_one():
        if time.monotonic() >= deadline:
            raise _timeout(timeout, _pg_holder(conn))
        time.sleep(0.2)
    name = sa.func.set_config("application_name", f"{_APP_PREFIX}{holder}"[:63], True)
    conn.execute(sa.select(name))
    # row and table locks inside the run (e.g. the ALTER of a ledger upgrade while a reader
    # holds the table) wait no longer than the advisory lock did
    conn.execute(sa.select(sa.func.set_config("lock_timeout", f"{int(timeout * 1000)}ms", True)))


def _pg_holder(conn: Connection) -> str:
    row = conn.execute(
        sa.text(
            "SELECT a.application_name, a.pid, a.xact_start FROM pg_locks l "
            "JOIN pg_stat_activity a ON a.pid = l.pid WHERE l.locktype = 'advisory' "
            "AND l.granted AND l.classid = 0 AND l.objid = :key AND l.objsubid = 1 "
            "AND l.database = (SELECT oid FROM pg_database WHERE datname = current_database())"
        ),
        {"key": LOCK_KEY},
    ).first()
    if row is None:
        return "another session (it has just let go)"
    app, pid, since = row
    when = f", since {since:%Y-%m-%d %H:%M:%S}" if since is not None else ""
    if app and app.startswith(_APP_PREFIX):
        return f"run {app[len(_APP_PREFIX) :]!r} (pid {pid}{when})"
    return f"another session {app or '(no application name)'!r} (pid {pid}{when})"


def _holder_file(engine: Engine) -> Path | None:
    db = engine.url.database
    return Path(f"{db}.holder") if db and db != ":memory:" else None


def _write_sqlite_holder(engine: Engine, holder: str) -> None:
    path = _holder_file(engine)
    if path is None:
        return
    tmp = path.with_name(f"{path.name}.{os.getpid()}.tmp")
    record = {
        "run_id": holder,
        "pid": os.getpid(),
        "since": datetime.now().isoformat("T", "seconds"),
    }
    tmp.write_text(json.dumps(record))
    os.replace(tmp, path)


def _sqlite_holder(engine: Engine) -> str:
    path = _holder_file(engine)
    try:
        record = json.loads(path.read_text()) if path is not None else None
    except (OSError, ValueError):
        record = None
    if not isinstance(record, dict):
        return "another process (no holder recorded)"
    return f"run {record.get('run_id')!r} (pid {record.get('pid')}, since {record.get('since')})"
