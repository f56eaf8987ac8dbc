"""SIGKILL around the ledger commit and the publication of the channel files: no kill leaves
a run half done; the next selection or `propensity publish` completes it from the ledger.

Each child is a real `propensity` process; `cli_child.py` stops it at an exact point (after
the rows are written but before the commit, after the commit, after the rename, inside a
recovery) and the test SIGKILLs it there, then checks `rig.check_invariants`.
"""

from __future__ import annotations

import random
import signal
import time
from pathlib import Path

import pytest
from rig import (
    TALLY,
    check_invariants,
    kill_at,
    make_bank,
    one_line_failure,
    run,
    select_args,
    start,
)

CHANNELS = ("email.csv", "sms.csv", "post.csv", "phone.csv")


@pytest.fixture(scope="module")
def bank(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return make_bank(tmp_path_factory.mktemp("bank"))


@pytest.fixture(scope="module")
def clean_r1(bank: Path, tmp_path_factory: pytest.TempPathFactory) -> dict[str, bytes]:
    """The channel files of run r1 on a fresh ledger, never interrupted."""
    work = tmp_path_factory.mktemp("clean")
    done = run(select_args(bank, work, f"sqlite:///{work / 'l.sqlite'}", "r1"))
    assert done.returncode == 0, done.stderr
    return {name: (work / "out" / "r1" / name).read_bytes() for name in CHANNELS}


def _publish(work: Path, url: str, run_id: str) -> list[str]:
    return ["publish", run_id, "--work-dir", str(work), "--ledger-url", url]


def _kill(args: list[str], hook: str, marker: Path) -> str:
    proc = start(args, hook, marker)
    kill_at(proc, marker)
    TALLY["kills"] += 1
    return proc.stderr.read() if proc.stderr else ""


def test_kills_around_commit_and_publish(
    bank: Path, clean_r1: dict[str, bytes], ledger_url: str, tmp_path: Path
) -> None:
    work, out = tmp_path / "w", tmp_path / "w" / "out"
    sel = lambda run_id, *x: select_args(bank, work, ledger_url, run_id, *x)  # noqa: E731
    _kill(sel("r1"), "before_commit", tmp_path / "m1")
    assert check_invariants(ledger_url, out) == {}  # rolled back: nothing, no files
    _kill(sel("r1"), "after_commit", tmp_path / "m2")
    assert check_invariants(ledger_url, out) == {"r1": False}  # committed, no files
    said = _kill(sel("r2"), "after_rename", tmp_path / "m3")
    assert "published run r1" in said  # recovered from the ledger first, with a line
    assert check_invariants(ledger_url, out) == {"r1": True, "r2": False}  # r2 files in place
    for name, content in clean_r1.items():  # rebuilt from the ledger = never interrupted
        assert (out / "r1" / name).read_bytes() == content, name
    _kill(sel("r3"), "after_commit", tmp_path / "m4")
    _kill(_publish(work, ledger_url, "r3"), "in_recovery", tmp_path / "m5")
    assert check_invariants(ledger_url, out) == {"r1": True, "r2": True, "r3": False}
    redo = run(sel("r3", "--replace"))  # committed, never published: may be redone
    assert redo.returncode == 0, redo.stderr
    assert "leftover staging directory" in redo.stderr  # named, left for a person to delete
    # r2's files went out before its kill: recovery marked it, and it is append-only now
    one_line_failure(run(sel("r2", "--replace")), 2, "refused", "published")
    TALLY["replace of a published run"] += 1
    again = run(_publish(work, ledger_url, "r3"))
    assert again.returncode == 0 and "already published" in again.stdout
    assert check_invariants(ledger_url, out) == {"r1": True, "r2": True, "r3": True}


def test_kills_at_random_moments(bank: Path, ledger_url: str, tmp_path: Path) -> None:
    rng = random.Random(12)
    work, out = tmp_path / "w", tmp_path / "w" / "out"
    for i in range(3):
        proc = start(select_args(bank, work, ledger_url, f"k{i}"))
        time.sleep(rng.uniform(1.0, 3.0))
        proc.send_signal(signal.SIGKILL)
        proc.wait(timeout=30)
        TALLY["kills"] += 1
        check_invariants(ledger_url, out)
    last = run(select_args(bank, work, ledger_url, "k9"))
    assert last.returncode == 0, last.stderr
    assert all(check_invariants(ledger_url, out).values())  # every committed run published
