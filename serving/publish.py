"""Publishing a committed run: its channel files appear in `<out>/<run_id>/` exactly once.

A run is committed to the ledger first (`published_at` null), then its staged files are
renamed into place and the run marked published, both under the ledger lock so two processes
never publish the same run. A kill between the commit and the mark leaves a committed run
that `publish_pending` (at the start of every selection) or `propensity publish RUN_ID` finds:
if its directory is already in place (the rename happened) it is only marked; otherwise the
files are rebuilt from the ledger's decisions, the record of what was decided.
"""

from __future__ import annotations

import json
import logging
from pathlib import Path

import polars as pl
import sqlalchemy as sa
from sqlalchemy.engine import Connection, Engine

from features.errors import ConfigError
from features.paths import fsync_dir, new_staging_dir, process_alive, remove_staging_dir
from serving import ledger as lg
from serving.ledger_lock import shown_url
from serving.outputs import channel_frames, final_dir, write_files
from serving.reasons import Reason

log = logging.getLogger(__name__)


def move_into_place(staging: Path, final: Path) -> bool:
    """Rename `staging` to `final`; False (staging dropped) when `final` is already there."""
    if final.exists():
        remove_staging_dir(staging)
        return False
    staging.rename(final)
    fsync_dir(final.parent)
    return True


def finish(conn: Connection, run_id: str, staging: Path, final: Path) -> None:
    """After the commit, under the lock: put the staged files in place and mark the run."""
    if lg.published_at(conn, run_id) is not None:
        remove_staging_dir(staging)  # another process published it from the ledger meanwhile
        return
    move_into_place(staging, final)
    lg.mark_published(conn, run_id)


def _summary(conn: Connection, run_id: str) -> dict:
    text = conn.execute(sa.select(lg.runs.c.summary).where(lg.runs.c.run_id == run_id)).scalar()
    value = json.loads(text or "{}")
    return value if isinstance(value, dict) else {}


def recorded_dir(conn: Connection, run_id: str, out_dir: Path) -> Path:
    """Where the run's files belong: the directory recorded at commit, else `out_dir/run_id`."""
    files = _summary(conn, run_id).get("files") or []
    return Path(files[0]).parent if files else final_dir(out_dir, run_id)


def ledger_frames(conn: Connection, run_id: str) -> dict[str, pl.DataFrame]:
    """The channel files' rows, rebuilt from the run's selected decisions."""
    d = lg.decisions.c
    stmt = sa.select(d.customer_id, d.campaign_id, d.product, d.channel, d.propensity, d.reasons)
    stmt = stmt.where(d.run_id == run_id, d.outcome == Reason.SELECTED.value)
    rows = conn.execute(stmt)
    schema = {
        "customer_id": pl.String(),
        "campaign_id": pl.String(),
        "product": pl.String(),
        "channel": pl.String(),
        "propensity": pl.Float64(),
        "reasons": pl.String(),
    }
    frame = pl.DataFrame([tuple(r) for r in rows], schema=schema, orient="row")
    return channel_frames(frame.with_columns(pl.col("reasons").str.split("\n")))


def publish_from_ledger(conn: Connection, run_id: str, out_dir: Path) -> Path:
    """Publish one committed run in the caller's locked transaction; returns its directory.

    A run that recorded no files (decisions served one event at a time by `serving.online`)
    has nothing to put in place: it is only marked.
    """
    if "files" not in _summary(conn, run_id):
        lg.mark_published(conn, run_id)
        return final_dir(out_dir, run_id)
    final = recorded_dir(conn, run_id, out_dir)
    if final.exists():
        log.info("run %s: files already in %s; marked published", run_id, final)
    else:
        final.parent.mkdir(parents=True, exist_ok=True)
        staging = new_staging_dir(final.parent, run_id)
        try:
            text = conn.execute(
                sa.select(lg.runs.c.summary).where(lg.runs.c.run_id == run_id)
            ).scalar_one()
            write_files(
                ledger_frames(conn, run_id), json.dumps(json.loads(text), indent=2), staging
            )
            move_into_place(staging, final)
        finally:
            remove_staging_dir(staging)
    lg.mark_published(conn, run_id)
    return final


def leftover_staging(out_dir: Path) -> list[Path]:
    """Staging directories of processes that no longer run (killed before they cleaned up)."""
    left = []
    for path in sorted(out_dir.glob(".*.staging-*")) if out_dir.is_dir() else []:
        pid = path.name.rsplit(".staging-", 1)[1].split("-", 1)[0]
        if pid.isdigit() and not process_alive(int(pid)):
            left.append(path)
    return left


def publish_pending(
    engine: Engine, out_dir: Path, holder: str, timeout: float, skip: str | None = None
) -> list[str]:
    """Publish every committed but unpublished run (except `skip`, about to be replaced).

    Staging directories a killed process left are named, never removed: only the process
    that made a directory deletes it (they hold no published data; delete them by hand).
    """
    for path in leftover_staging(out_dir):
        log.warning("leftover staging directory of a killed run (safe to delete): %s", path)
    if not lg.has_ledger(engine):
        return []
    with lg.reading(engine) as conn:
        pending = [r for r in lg.unpublished_runs(conn) if r != skip] if _has_column(conn) else []
    if not pending:
        return []
    done = []
    with lg.locked(engine, holder, timeout) as conn:
        for run_id in lg.unpublished_runs(conn):
            if run_id == skip:
                continue
            where = publish_from_ledger(conn, run_id, out_dir)
            log.warning(
                "published run %s (committed earlier, never published) to %s", run_id, where
            )
            done.append(run_id)
    return done


def _has_column(conn: Connection) -> bool:
    """False for a ledger written before `published_at` (its runs count as published)."""
    return "published_at" in {c["name"] for c in sa.inspect(conn).get_columns("runs")}


def publish_run(engine: Engine, run_id: str, out_dir: Path, timeout: float) -> tuple[Path, bool]:
    """`propensity publish RUN_ID`: (directory, True when published now, False if earlier)."""
    with lg.locked(engine, f"publish {run_id}", timeout) as conn:
        if not lg.run_exists(conn, run_id):
            raise ConfigError(f"run {run_id!r} is not in the ledger at {shown_url(engine.url)}")
        if lg.published_at(conn, run_id) is not None:
            return recorded_dir(conn, run_id, out_dir), False
        return publish_from_ledger(conn, run_id, out_dir), True
