"""The rig of the reliability tests: a small bank on disk, `propensity` as a child process,
and the invariants every interrupted run must leave behind."""

from __future__ import annotations

import atexit
import functools
import json
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Sequence
from pathlib import Path

import polars as pl
import pytest
import sqlalchemy as sa
from serving_world import AS_OF, adult, build_world

__all__ = ["AS_OF"]

from models.registry import resolve_tracking_uri
from propensity.cli import main
from serving.config import ServingConfig

TALLY: Counter[str] = Counter()  # what the suite tried (kills, faults, hostile inputs)
CHILD = Path(__file__).with_name("cli_child.py")
CHANNEL_FILES = ("email.csv", "sms.csv", "post.csv", "phone.csv", "summary.json")
CAMPAIGNS = """
[serving]
lock_timeout_seconds = {timeout}

[[campaigns]]
id = "sav"
product = "savings"
channels = ["email", "post"]
start = 2026-01-01
end = 2026-12-31
capacity = {{ email = 15, post = 5 }}
min_propensity = 0.1
control_share = 0.0

[[campaigns]]
id = "ins"
product = "insurance"
channels = ["sms"]
start = 2026-01-01
end = 2026-12-31
capacity = {{ sms = 10 }}
min_propensity = 0.1
control_share = 0.0
"""


def make_bank(root: Path, ids: Sequence[str] | None = None, timeout: float = 30) -> Path:
    """A bank of adults under `root/data`, its scores and a propensity.toml; returns `root`."""
    n = len(ids) if ids is not None else 30
    specs = [adult(scores=(0.2 + (i % 7) / 10, 0.3 + (i % 5) / 10, 0.1, 0.1)) for i in range(n)]
    world = build_world(specs, [], ServingConfig())
    rename = dict(zip([f"c{i:03d}" for i in range(n)], ids or [], strict=False))
    data = root / "data"
    data.mkdir(parents=True)
    for name in ("transactions", "customers", "products", "consents", "contacts"):
        frame = getattr(world.tables, name).collect()
        if rename:
            frame = frame.with_columns(pl.col("customer_id").replace(rename))
        frame.write_parquet(data / f"{name}.parquet")
    scores = (
        world.scores.with_columns(pl.col("customer_id").replace(rename)) if rename else world.scores
    )
    scores.write_parquet(root / "scores.parquet")
    (root / "propensity.toml").write_text(CAMPAIGNS.format(timeout=timeout))
    return root


@functools.cache
def _store() -> str:
    """One MLflow store for every child of this session (`select` opens one; making a fresh
    store per work directory would cost seconds per test)."""
    root = Path(tempfile.mkdtemp(prefix="reliability-mlflow-"))
    atexit.register(shutil.rmtree, root, ignore_errors=True)  # made by this process
    return resolve_tracking_uri(f"sqlite:///{root / 'mlflow.db'}")


def tracking_uri(_bank: Path) -> str:
    return _store()


def select_args(bank: Path, work: Path, url: str, run_id: str, *extra: str) -> list[str]:
    return [
        "select", str(bank / "data"), "--as-of", AS_OF.isoformat(),
        "--scores", str(bank / "scores.parquet"), "--config", str(bank / "propensity.toml"),
        "--ledger-url", url, "--work-dir", str(work), "--run-id", run_id, "--no-reasons",
        "--tracking-uri", tracking_uri(bank), *extra,
    ]  # fmt: skip


def start(
    args: list[str], hook: str = "none", marker: Path | None = None, fsize: int | None = None,
    env: dict[str, str] | None = None,
) -> subprocess.Popen:  # fmt: skip
    head = [hook, str(marker or "/nonexistent-marker")] + ([str(fsize)] if fsize else [])
    return subprocess.Popen(
        [sys.executable, str(CHILD), *head, "--", *args],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env,
    )  # fmt: skip


def run(args: list[str], **kw: object) -> subprocess.CompletedProcess:
    proc = start(args, **kw)  # type: ignore[arg-type]
    out, err = proc.communicate(timeout=120)
    return subprocess.CompletedProcess(proc.args, proc.returncode, out, err)


def kill_at(proc: subprocess.Popen, marker: Path, timeout: float = 60) -> None:
    """SIGKILL `proc` as soon as it touched `marker` (it then sleeps at its hook)."""
    deadline = time.monotonic() + timeout
    while not marker.exists():
        if proc.poll() is not None:
            raise AssertionError(f"child ended before its hook: {proc.stderr.read()}")  # type: ignore[union-attr]
        assert time.monotonic() < deadline, "the child never reached its hook"
        time.sleep(0.02)
    proc.send_signal(signal.SIGKILL)
    proc.wait(timeout=30)
    assert proc.returncode == -signal.SIGKILL


def one_line_failure(result: subprocess.CompletedProcess, code: int, *words: str) -> str:
    """The failure was exit `code`, one `error:` line containing `words`, no traceback."""
    assert result.returncode == code, (result.returncode, result.stderr)
    assert "Traceback" not in result.stderr, result.stderr
    lines = [ln for ln in result.stderr.splitlines() if ln.startswith("error:")]
    assert len(lines) == 1, result.stderr
    for word in words:
        assert word in lines[0], (word, lines[0])
    return lines[0]


def query(url: str, sql: str) -> list[tuple]:
    engine = sa.create_engine(url)
    try:
        if not sa.inspect(engine).has_table("runs"):
            return []
        with engine.connect() as conn:
            return [tuple(r) for r in conn.execute(sa.text(sql))]
    finally:
        engine.dispose()


def runs(url: str) -> dict[str, bool]:
    """run_id -> published?"""
    return {r: p is not None for r, p in query(url, "select run_id, published_at from runs")}


def check_invariants(url: str, out: Path) -> dict[str, bool]:
    """Nothing partial: a published run has all its files, exactly what its ledger rows say;
    an unpublished or absent run has no directory; only staging dirs are hidden leftovers."""
    state = runs(url)
    names = {p.name for p in out.iterdir()} if out.exists() else set()
    for name in names:
        assert name in state or ".staging-" in name, f"files of a run not in the ledger: {name}"
    for run_id, published in state.items():
        final = out / run_id
        if not final.exists():
            assert not published, f"{run_id}: published, but its files are missing"
            continue
        # present: complete, and exactly what the ledger says (a kill after the rename leaves
        # complete files of a run not yet marked published; recovery only marks it)
        assert sorted(p.name for p in final.iterdir()) == sorted(CHANNEL_FILES), run_id
        selected = query(
            url,
            f"select customer_id from decisions where run_id = '{run_id}' and outcome = 'selected'",
        )
        in_files = sum(pl.read_csv(final / f, infer_schema=False).height for f in CHANNEL_FILES[:4])
        assert in_files == len(selected), (run_id, in_files, len(selected))
        summary = json.loads((final / "summary.json").read_text())
        assert summary["run_id"] == run_id
        contacts = query(url, f"select count(*) from contacts where run_id = '{run_id}'")[0][0]
        assert contacts == len(selected)
    return state


def cli(args: list[str], capsys: pytest.CaptureFixture[str]) -> tuple[int, str, str]:
    old = sys.argv
    sys.argv = ["propensity", *args]
    try:
        main()
        code = 0
    except SystemExit as exc:
        code = int(exc.code or 0)
    finally:
        sys.argv = old
    out, err = capsys.readouterr()
    return code, out, err


def refused(args: list[str], capsys: pytest.CaptureFixture[str], *words: str) -> str:
    """Exit 2, one error (a config error may list its keys on indented lines), no traceback."""
    code, _, err = cli(args, capsys)
    TALLY["hostile inputs"] += 1
    assert code == 2 and err.count("error:") == 1 and "Traceback" not in err, (code, err)
    message = err[err.index("error:") :]
    for word in words:
        assert word in message, (word, message)
    return message
