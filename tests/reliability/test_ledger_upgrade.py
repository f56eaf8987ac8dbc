"""A ledger written before `runs.published_at` existed still opens: the column is added, its
runs count as published (the code of the time published right after the commit), so they are
never re-sent by recovery and never replaced."""

from __future__ import annotations

from pathlib import Path

import pytest
import sqlalchemy as sa
from rig import cli, make_bank, refused, runs, select_args

OLD_RUNS = """CREATE TABLE runs (
    run_id VARCHAR(200) PRIMARY KEY, created_at TIMESTAMP NOT NULL, as_of DATE NOT NULL,
    config_hash VARCHAR(64) NOT NULL, model_versions TEXT NOT NULL,
    status VARCHAR(20) NOT NULL, summary TEXT NOT NULL)"""


def test_old_ledger_opens_and_its_runs_stay_published(
    ledger_url: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    engine = sa.create_engine(ledger_url)
    with engine.begin() as conn:
        conn.execute(sa.text(OLD_RUNS))
        conn.execute(
            sa.text(
                "INSERT INTO runs VALUES ('old1', '2026-10-01 10:00:00', '2026-10-01', 'h', "
                "'{}', 'complete', '{}')"
            )
        )
    engine.dispose()
    bank = make_bank(tmp_path / "bank")
    work = tmp_path / "w"
    code, _, err = cli(select_args(bank, work, ledger_url, "new1"), capsys)
    assert code == 0, err
    assert "published run old1" not in err  # an old run is never re-sent
    assert runs(ledger_url) == {"old1": True, "new1": True}
    assert not (work / "out" / "old1").exists()
    refused(select_args(bank, work, ledger_url, "old1", "--replace"), capsys, "refused")
    assert sorted(p.name for p in (work / "out").iterdir()) == ["new1"]


def test_a_run_without_files_is_only_marked(
    ledger_url: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """An unpublished run that recorded no files (e.g. decisions served per event) gets no
    channel directory from recovery; it is only marked published."""
    bank, work = make_bank(tmp_path / "bank"), tmp_path / "w"
    assert cli(select_args(bank, work, ledger_url, "r1"), capsys)[0] == 0  # creates the ledger
    engine = sa.create_engine(ledger_url)
    with engine.begin() as conn:
        conn.execute(
            sa.text(
                "INSERT INTO runs (run_id, created_at, as_of, config_hash, model_versions, "
                "status, summary) VALUES ('events-1', '2026-11-02 10:00:00', '2026-11-02', 'h', "
                """'{}', 'complete', '{"source": "events"}')"""
            )
        )
    engine.dispose()
    code, _, err = cli(select_args(bank, work, ledger_url, "r2"), capsys)
    assert code == 0, err
    assert runs(ledger_url) == {"r1": True, "r2": True, "events-1": True}
    assert sorted(p.name for p in (work / "out").iterdir()) == ["r1", "r2"]
