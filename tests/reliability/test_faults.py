"""Faults of the environment: a full disk (RLIMIT_FSIZE in the child), PostgreSQL connections
terminated mid-run, and a ledger lock held by another run. Each is exit 1 with one line, no
traceback, and leaves nothing partial; the next run succeeds."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import sqlalchemy as sa
from rig import (
    TALLY,
    check_invariants,
    make_bank,
    one_line_failure,
    run,
    select_args,
    start,
)
from serving_conftest import PgSchemas

from features.paths import write_text_atomic


@pytest.fixture(scope="module")
def bank(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return make_bank(tmp_path_factory.mktemp("bank"))


# bytes any file may grow to: the summary, a channel file, the SQLite WAL, the database
LIMITS = (300, 20_000)


def test_disk_full(bank: Path, ledger_url: str, tmp_path: Path) -> None:
    work, out = tmp_path / "w", tmp_path / "w" / "out"
    outcomes = []
    for i, limit in enumerate(LIMITS):
        result = run(select_args(bank, work, ledger_url, f"d{i}"), fsize=limit)
        TALLY["full disks"] += 1
        if result.returncode != 0:
            one_line_failure(result, 1)
        outcomes.append(result.returncode)
        check_invariants(ledger_url, out)
    assert outcomes[0] == 1, "the smallest limit must make the run fail"
    again = run(select_args(bank, work, ledger_url, "d9"))
    assert again.returncode == 0, again.stderr
    assert all(check_invariants(ledger_url, out).values())


def test_full_disk_keeps_the_previous_file(tmp_path: Path) -> None:
    """A report (or any file written atomically) is the old one or the new one, never half."""
    path = write_text_atomic(tmp_path / "report.html", "old report")
    code = (
        "import resource, signal, sys; from pathlib import Path;"
        "from features.paths import write_text_atomic;"
        "signal.signal(signal.SIGXFSZ, signal.SIG_IGN);"
        "resource.setrlimit(resource.RLIMIT_FSIZE, (4096, 4096));"
        f"write_text_atomic(Path({str(path)!r}), 'x' * 100_000)"
    )
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    TALLY["full disks"] += 1
    assert proc.returncode == 1 and "disk full" in proc.stderr
    assert path.read_text() == "old report"
    assert [p.name for p in tmp_path.iterdir()] == ["report.html"]  # no temporary left


@pytest.fixture
def pg_url(pg_base_url: str) -> Iterator[str]:
    schemas = PgSchemas(pg_base_url)
    try:
        yield schemas.new_url()
    finally:
        schemas.drop_all()


@pytest.mark.postgres
def test_postgres_connection_terminated_mid_run(
    bank: Path, pg_base_url: str, pg_url: str, tmp_path: Path
) -> None:
    url = pg_url
    work, out, marker = tmp_path / "w", tmp_path / "w" / "out", tmp_path / "m"
    proc = start(select_args(bank, work, url, "p1"), "hold", marker, env=_env(HOLD_SECONDS="3"))
    _wait(proc, marker)
    admin = sa.create_engine(pg_base_url)
    with admin.begin() as conn:
        killed = conn.execute(
            sa.text(
                "select pg_terminate_backend(pid) from pg_stat_activity "
                "where application_name = 'propensity p1'"
            )
        ).all()
    admin.dispose()
    assert killed == [(True,)]
    TALLY["PostgreSQL connections terminated"] += 1
    out_, err = proc.communicate(timeout=60)
    one_line_failure(subprocess.CompletedProcess(proc.args, proc.returncode, out_, err), 1)
    assert check_invariants(url, out) == {}
    assert run(select_args(bank, work, url, "p1")).returncode == 0
    assert check_invariants(url, out) == {"p1": True}


def test_lock_timeout_names_the_holder(bank: Path, ledger_url: str, tmp_path: Path) -> None:
    work, out, marker = tmp_path / "w", tmp_path / "w" / "out", tmp_path / "m"
    holder = start(select_args(bank, work, ledger_url, "holder"), "hold", marker)
    _wait(holder, marker)
    impatient = tmp_path / "propensity.toml"
    impatient.write_text(
        (bank / "propensity.toml")
        .read_text()
        .replace("lock_timeout_seconds = 30", "lock_timeout_seconds = 1")
    )
    args = select_args(bank, work, ledger_url, "waiter")
    args[args.index("--config") + 1] = str(impatient)
    t0 = time.monotonic()
    waiter = run(args)
    TALLY["concurrent selections held off"] += 1
    one_line_failure(waiter, 1, "lock", "'holder'")
    assert time.monotonic() - t0 < 60
    holder.send_signal(signal.SIGKILL)
    holder.wait(timeout=30)
    TALLY["kills"] += 1
    assert check_invariants(ledger_url, out) == {}  # the killed holder rolled back


def _wait(proc: subprocess.Popen, marker: Path) -> None:
    deadline = time.monotonic() + 90
    while not marker.exists():
        assert proc.poll() is None, proc.stderr.read() if proc.stderr else ""
        assert time.monotonic() < deadline
        time.sleep(0.02)


def _env(**extra: str) -> dict[str, str]:
    return {**os.environ, **extra}


def test_database_errors_carry_no_parameters(ledger_url: str) -> None:
    """A failed insert is one line from the driver: no SQL text, no customer id parameters."""
    from features.errors import EnvironmentFailure
    from serving import ledger as lg

    engine = lg.make_engine(ledger_url)
    try:
        row = {"customer_id": "SECRET-C1", "product": "savings", "channel": "email"}
        with (
            pytest.raises(EnvironmentFailure) as caught,
            lg.ledger_errors(engine),
            lg.locked(engine, "t") as conn,
        ):
            conn.execute(lg.contacts.insert(), [row])  # contacted_at, source: NOT NULL
    finally:
        engine.dispose()
    message = str(caught.value)
    TALLY["database faults"] += 1
    assert "SECRET" not in message and "INSERT" not in message and "\n" not in message
