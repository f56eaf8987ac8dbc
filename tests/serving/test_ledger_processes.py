"""Real processes against a real ledger: a SIGKILL mid-run leaves no partial run, and two
runs at the same time never push a customer past the contact cap."""

from __future__ import annotations

import signal
import subprocess
import sys
import time
from pathlib import Path

import polars as pl
import sqlalchemy as sa

CHILD = Path(__file__).with_name("ledger_child.py")


def _start(
    url: str, run_id: str, out: Path, product: str, mode: str, marker: Path | None = None
) -> subprocess.Popen:
    args = [sys.executable, str(CHILD), url, run_id, str(out), product, mode]
    if marker is not None:
        args.append(str(marker))
    return subprocess.Popen(args, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def _count(url: str, sql: str) -> int:
    """A count; 0 when the ledger tables do not exist (the killed run's DDL rolled back too)."""
    engine = sa.create_engine(url)
    try:
        if not sa.inspect(engine).has_table("runs"):
            return 0
        with engine.connect() as conn:
            return int(conn.execute(sa.text(sql)).scalar_one())
    finally:
        engine.dispose()


def test_sigkill_mid_run_leaves_no_partial_run(ledger_url: str, tmp_path: Path) -> None:
    marker = tmp_path / "writing"
    proc = _start(ledger_url, "r1", tmp_path, "savings", "crash", marker)
    deadline = time.monotonic() + 60
    while not marker.exists():
        assert proc.poll() is None, proc.stderr.read() if proc.stderr else ""
        assert time.monotonic() < deadline, "the run never reached the decisions insert"
        time.sleep(0.05)
    proc.send_signal(signal.SIGKILL)
    proc.wait(timeout=30)
    assert proc.returncode == -signal.SIGKILL
    for table in ("runs", "decisions"):
        assert _count(ledger_url, f"select count(*) from {table}") == 0
    assert _count(ledger_url, "select count(*) from contacts where source = 'run'") == 0
    assert not (tmp_path / "r1").exists()
    rerun = _start(ledger_url, "r1", tmp_path, "savings", "normal")
    out, err = rerun.communicate(timeout=60)
    assert rerun.returncode == 0, err
    assert int(out.strip().splitlines()[-1]) == 40
    assert _count(ledger_url, "select count(*) from runs where run_id = 'r1'") == 1
    assert (tmp_path / "r1" / "email.csv").exists()


def test_parallel_runs_never_exceed_the_cap(ledger_url: str, tmp_path: Path) -> None:
    # each customer has 1 contact in the last 30 days; the cap is 2: only one run may add one
    procs = [_start(ledger_url, f"run-{p}", tmp_path, p, "slow") for p in ("savings", "insurance")]
    results = [p.communicate(timeout=90) for p in procs]
    assert all(p.returncode == 0 for p in procs), [err for _, err in results]
    selected = sorted(int(out.strip().splitlines()[-1]) for out, _ in results)
    assert selected == [0, 40]
    engine = sa.create_engine(ledger_url)
    with engine.connect() as conn:
        rows = conn.execute(
            sa.text("select customer_id, count(*) from contacts group by customer_id")
        )
        per_customer = pl.DataFrame(
            [tuple(r) for r in rows], schema=["customer_id", "n"], orient="row"
        )
    engine.dispose()
    assert per_customer.height == 40 and per_customer["n"].max() == 2
