"""The MLflow SQLite store survives a crash on first use (issue 12, item 2): a real first
`propensity train` is SIGKILLed at several points of the store set-up and of the run, the store
is never left half-migrated, and a rerun succeeds with the killed run marked FAILED. Also: a
half-migrated store left by older versions is set aside when empty and refused when not."""

from __future__ import annotations

import os
import shutil
import signal
import sqlite3
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import pytest
from mlflow import MlflowClient

from models.registry import (
    TrackingStoreError,
    ensure_sqlite_store,
    fail_orphaned_runs,
    owner_tags,
    quiet_mlflow,
    store_problem,
)

TOML = """[training]
n_train_snapshots = 3
min_positives = 3
[training.lightgbm]
min_child_samples = 20
n_estimators = 40
n_jobs = 1
"""


@pytest.fixture(scope="module")
def small_bank(tmp_path_factory: pytest.TempPathFactory) -> Path:
    from synthbank import generate

    out = tmp_path_factory.mktemp("bank") / "data"
    generate(customers=800, months=18, seed=1, out=out)
    return out


def _train(bank: Path, work: Path) -> subprocess.Popen[str]:
    config = work.parent / "train.toml"
    config.write_text(TOML)
    exe = Path(sys.executable).with_name("propensity")
    cmd = [str(exe), "train", str(bank), "--products", "savings", "--work-dir", str(work)]
    env = {k: v for k, v in os.environ.items() if k != "MLFLOW_TRACKING_URI"}
    return subprocess.Popen(
        [*cmd, "--config", str(config)],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env,
    )  # fmt: skip


def _running_runs(db: Path) -> int:
    try:
        with sqlite3.connect(f"file:{db}?mode=ro", uri=True, timeout=1) as con:
            return con.execute("SELECT COUNT(*) FROM runs WHERE status = 'RUNNING'").fetchone()[0]
    except sqlite3.Error:
        return 0


def _kill_when(proc: subprocess.Popen[str], ready: Callable[[], bool], delay: float) -> bool:
    """SIGKILL `proc` `delay` seconds after `ready()` first holds; False if it ended first."""
    deadline = time.monotonic() + 120
    while not ready():
        if proc.poll() is not None or time.monotonic() > deadline:
            proc.communicate()
            return False
        time.sleep(0.005)
    time.sleep(delay)
    proc.send_signal(signal.SIGKILL)
    proc.communicate()
    return proc.returncode == -signal.SIGKILL


@pytest.mark.slow
def test_sigkill_during_first_set_up_and_run_then_rerun_succeeds(small_bank: Path, tmp_path):
    work = tmp_path / "work"
    db = work / "mlflow.db"

    def temporary() -> bool:
        return any(work.glob(".mlflow.db.*.tmp"))

    points = [
        ("store migration starts", temporary, 0.0),
        ("store migration half done", temporary, 0.6),
        ("MLflow run in progress", lambda: _running_runs(db) > 0, 0.0),
    ]
    killed = []
    for name, ready, delay in points:
        if _kill_when(_train(small_bank, work), ready, delay):
            killed.append(name)
        # never a half-migrated store under the final name, whatever the moment
        assert not db.exists() or store_problem(db) is None, name
    assert len(killed) >= 2, killed  # the timing-dependent points mostly land
    done = _train(small_bank, work)
    out, err = done.communicate(timeout=300)
    assert done.returncode == 0, err
    assert "Traceback" not in err and "v1" in out
    assert _running_runs(db) == 0
    assert not list(work.glob(".mlflow.db.*.tmp*"))  # the killed set-ups' leftovers are gone
    if "MLflow run in progress" in killed:
        client = MlflowClient(tracking_uri=f"sqlite:///{db}")
        statuses = [r.info.status for r in client.search_runs(["1"], run_view_type=3)]
        assert sorted(statuses) == ["FAILED", "FINISHED"], statuses


@pytest.fixture(scope="module")
def template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """One store made by `ensure_sqlite_store` (migrations take seconds); tests copy it."""
    path = tmp_path_factory.mktemp("template") / "mlflow.db"
    ensure_sqlite_store(path)
    assert store_problem(path) is None and not list(path.parent.glob(".mlflow.db*"))
    return path


def _new_store(template: Path, path: Path) -> str:
    shutil.copy(template, path)
    return f"sqlite:///{path}"


def _break(path: Path) -> None:
    """What a kill during an old-style in-place migration left behind."""
    with sqlite3.connect(path) as con:
        con.execute("CREATE TABLE _alembic_tmp_latest_metrics (key VARCHAR(250))")


def test_empty_half_migrated_store_is_set_aside_and_recreated(tmp_path: Path, template) -> None:
    path = tmp_path / "mlflow.db"
    _new_store(template, path)
    _break(path)
    assert "_alembic_tmp_latest_metrics" in (store_problem(path) or "")
    ensure_sqlite_store(path)
    assert store_problem(path) is None
    assert len(list(tmp_path.glob("mlflow.db.broken-*"))) == 1
    (tmp_path / "garbage.db").write_bytes(b"not a database at all, half written")
    ensure_sqlite_store(tmp_path / "garbage.db")
    assert store_problem(tmp_path / "garbage.db") is None


def test_half_migrated_store_with_runs_is_refused_with_one_clear_line(tmp_path, template) -> None:
    quiet_mlflow()
    path = tmp_path / "mlflow.db"
    client = MlflowClient(tracking_uri=_new_store(template, path))
    client.create_run(client.create_experiment("propensity"))
    _break(path)
    with pytest.raises(TrackingStoreError, match="holds runs or models") as err:
        ensure_sqlite_store(path)
    assert err.value.exit_code == 1 and "\n" not in str(err.value)
    assert path.exists() and not list(tmp_path.glob("mlflow.db.broken-*"))


def test_only_runs_of_dead_processes_are_marked_failed(tmp_path: Path, template) -> None:
    uri = _new_store(template, tmp_path / "mlflow.db")
    client = MlflowClient(tracking_uri=uri)
    experiment = client.create_experiment("propensity")
    ended = subprocess.Popen([sys.executable, "-c", "pass"])
    ended.wait()  # reaped: its pid names no process now
    dead_pid = str(ended.pid)
    live = client.create_run(experiment, tags=owner_tags()).info.run_id
    dead = client.create_run(experiment, tags={**owner_tags(), "propensity.pid": dead_pid})
    untagged = client.create_run(experiment).info.run_id
    failed = fail_orphaned_runs(experiment, uri)
    assert sorted(failed) == sorted([dead.info.run_id, untagged])
    assert client.get_run(live).info.status == "RUNNING"
    assert client.get_run(dead.info.run_id).info.status == "FAILED"


def test_a_store_locked_by_another_process_is_busy_not_broken(tmp_path: Path, template) -> None:
    path = tmp_path / "mlflow.db"
    _new_store(template, path)
    holder = sqlite3.connect(path)
    holder.execute("BEGIN EXCLUSIVE")  # another writer, mid-transaction
    try:
        with pytest.raises(TrackingStoreError, match="locked by another process"):
            ensure_sqlite_store(path)
    finally:
        holder.rollback()
        holder.close()
    assert not list(tmp_path.glob("mlflow.db.broken-*"))
    ensure_sqlite_store(path)  # free again: fine


FULL_DISK = """
import resource, signal, sys
from pathlib import Path
from models.registry import TrackingStoreError, ensure_sqlite_store
signal.signal(signal.SIGXFSZ, signal.SIG_IGN)  # a write past the limit fails (EFBIG) instead
resource.setrlimit(resource.RLIMIT_FSIZE, (150_000, 150_000))  # the disk fills up mid-set-up
try:
    ensure_sqlite_store(Path(sys.argv[1]))
except TrackingStoreError as exc:
    print(exc.exit_code, exc)
"""


def test_a_full_disk_during_set_up_is_one_line_and_leaves_no_store(tmp_path: Path) -> None:
    path = tmp_path / "mlflow.db"
    done = subprocess.run(
        [sys.executable, "-c", FULL_DISK, str(path)], capture_output=True, text=True, timeout=120
    )
    assert done.returncode == 0, done.stderr[-2000:]
    assert done.stdout.startswith("1 could not create the MLflow store"), done.stdout
    assert len(done.stdout.strip().splitlines()) == 1
    assert not path.exists() and not list(tmp_path.glob(".mlflow.db*"))
