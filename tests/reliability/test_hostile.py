"""Hostile and absurd input through the real `propensity` entry point (in process): ids that
try to escape the work directory or run in a spreadsheet, dates and sizes out of range, and
broken ledger URLs. Each is exit 2 with one line naming the option or key, before anything
is written; ids a spreadsheet would run are escaped in the channel files."""

from __future__ import annotations

from pathlib import Path

import polars as pl
import pytest
from rig import AS_OF, TALLY, cli, make_bank, refused, select_args

FORMULAS = ('=HYPERLINK("http://evil","x")', "+SUM(1+1)", "-2+3", "@SUM(A1)")


@pytest.fixture(scope="module")
def bank(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return make_bank(tmp_path_factory.mktemp("bank"))


def test_run_ids_never_become_paths(
    bank: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    victim = tmp_path / "victim"
    victim.mkdir()
    (victim / "keep.txt").write_text("precious")
    work = tmp_path / "w"
    url = f"sqlite:///{tmp_path / 'ledger.sqlite'}"
    hostile = ["..", ".", "a/b", "../../x", str(victim), "x" * 250, FORMULAS[0], "", " r", "r\n"]
    for run_id in hostile:
        refused(select_args(bank, work, url, run_id), capsys, "--run-id")
        refused(["run", "--work-dir", str(work), "--run-id", run_id], capsys, "run_id")
    assert (victim / "keep.txt").read_text() == "precious"
    assert not work.exists() and not (tmp_path / "ledger.sqlite").exists()


@pytest.mark.parametrize(
    ("edit", "key"),
    [
        (('id = "sav"', 'id = "../sav"'), "id"),
        (('id = "sav"', 'id = "=cmd|x"'), "id"),
        (('product = "savings"', 'product = "a/b"'), "product"),
        (("start = 2026-01-01", "start = 9999-01-01"), "start"),
        (("email = 15", "email = 1e20"), "capacity"),
        (("lock_timeout_seconds = 30", "lock_timeout_seconds = -1"), "lock_timeout"),
        (("[serving]", "[policy]\ncontacts_window_days = 100000000\n[serving]"), "window"),
    ],
)
def test_bad_campaign_config(
    edit: tuple[str, str], key: str, bank: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    text = (bank / "propensity.toml").read_text()
    assert edit[0] in text
    bad = tmp_path / "c.toml"
    bad.write_text(text.replace(edit[0], edit[1], 1))
    args = select_args(bank, tmp_path / "w", f"sqlite:///{tmp_path / 'l.sqlite'}", "r1")
    args[args.index("--config") + 1] = str(bad)
    refused(args, capsys, key)
    assert not (tmp_path / "w").exists() and not (tmp_path / "l.sqlite").exists()


def test_dates_and_ledger_urls(
    bank: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    work = tmp_path / "w"
    args = select_args(bank, work, f"sqlite:///{tmp_path / 'l.sqlite'}", "r1")
    late = args.copy()
    late[late.index("--as-of") + 1] = "9999-12-31"
    refused(late, capsys, "--as-of", "9999-12-31")
    refused(["run", "--work-dir", str(work), "--as-of", "9999-12-31"], capsys, "--as-of")
    for url in (
        "postgres://someone@127.0.0.1:5432/test",
        "mysql://x@y/z",
        "not a url",
        "postgresql+psycopg://no_such_role_h12@127.0.0.1:5432/test",
        "postgresql+psycopg://someone@nohost.invalid:5432/test",
        f"sqlite:///{tmp_path / 'missing-dir' / 'l.sqlite'}",
    ):
        bad = args.copy()
        bad[bad.index("--ledger-url") + 1] = url
        line = refused(bad, capsys, "--ledger-url")
        assert "[SQL" not in line and "parameters" not in line
    assert not (tmp_path / "l.sqlite").exists()


def test_hostile_customer_ids(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    ids = [*FORMULAS, "c-plain", "'quoted"] + [f"c{i:03d}" for i in range(14)]
    bank = make_bank(tmp_path / "bank", ids)
    work, url = tmp_path / "w", f"sqlite:///{tmp_path / 'l.sqlite'}"
    code, _, err = cli(select_args(bank, work, url, "r1"), capsys)
    assert code == 0, err
    TALLY["hostile inputs"] += len(FORMULAS)
    cells = pl.concat(
        [
            pl.read_csv(work / "out" / "r1" / f"{ch}.csv", infer_schema=False)
            for ch in ("email", "sms", "post", "phone")
        ]
    )
    written = set(cells["customer_id"])
    for raw in FORMULAS:
        assert raw not in written and f"'{raw}" in written  # escaped, every one selected
    assert "c-plain" in written and "'quoted" in written  # nothing else changes
    for col in cells.columns:
        assert not cells[col].drop_nulls().str.contains(r"^[=+\-@\t\r]").any(), col
    code, out, err = cli(["explain", FORMULAS[0], "--ledger-url", url, "--json"], capsys)
    assert code == 0 and "selected" in out, err  # the ledger keeps the id as the bank has it


@pytest.mark.parametrize("bad", ["tab\there", "cr\rhere", "x" * 65])
def test_customer_ids_refused_at_load(
    bad: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    bank = make_bank(tmp_path / "bank", [bad, *(f"c{i}" for i in range(5))])
    args = select_args(bank, tmp_path / "w", f"sqlite:///{tmp_path / 'l.sqlite'}", "r1")
    line = refused(args, capsys, "customers.customer_id")
    assert "row " in line
    assert not (tmp_path / "w").exists()


def test_explain_unknown_customer(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    bank = make_bank(tmp_path / "bank")
    url = f"sqlite:///{tmp_path / 'l.sqlite'}"
    assert cli(select_args(bank, tmp_path / "w", url, "r1"), capsys)[0] == 0
    refused(["explain", "nobody", "--ledger-url", url], capsys, "unknown", "'nobody'")
    refused(["explain", "a\tb", "--ledger-url", url], capsys, "CUSTOMER_ID")
    code, out, _ = cli(["explain", "c001", "--ledger-url", url], capsys)
    assert code == 0 and "contact contacted_at=" in out and "source=run" in out


assert AS_OF  # the run date every bank of the rig is built around


@pytest.mark.parametrize(
    ("toml", "key"),
    [
        ("[features]\nwindows = [30, 100000000]", "features.windows"),
        ("[features.distress]\nwindow_days = 100000000", "window_days"),
        ("[policy]\ncontacts_window_days = 100000000", "policy.contacts_window_days"),
        ("[run]\nas_of = 9999-12-31", "run.as_of"),
        ('[run]\nrun_id = "../x"', "run.run_id"),
        ('[[products]]\nname = "a/b"\ncredit = false', "letter or digit"),
        ("[serving]\nlock_timeout_seconds = 0", "lock_timeout_seconds"),
    ],
)
def test_propensity_toml_ranges(
    toml: str, key: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    config = tmp_path / "propensity.toml"
    config.write_text(f'work_dir = "{tmp_path / "w"}"\n{toml}\n')
    refused(["run", "--config", str(config)], capsys, key)
    assert not (tmp_path / "w").exists()  # refused before anything is generated or trained


def test_debug_adds_the_traceback(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    bank = make_bank(tmp_path / "bank")
    args = select_args(bank, tmp_path / "w", f"sqlite:///{tmp_path / 'no' / 'l.sqlite'}", "r1")
    line = refused(args, capsys, "--ledger-url", "does not exist")
    code, _, err = cli(["--debug", *args], capsys)
    assert code == 2 and "Traceback" in err and line in err


def test_failure_lines() -> None:
    """Environment failures are exit 1 and one line; an internal error says how to learn more."""
    import errno

    import sqlalchemy as sa

    from propensity.cli import failure_line

    full = OSError(errno.ENOSPC, "No space left on device", "/w/out/x.csv")
    assert failure_line(full) == ("disk full: /w/out/x.csv (No space left on device)", 1)
    orig = Exception("connection is lost\nDETAIL: customer SECRET")
    db = sa.exc.OperationalError("INSERT INTO contacts VALUES (?)", ("SECRET",), orig)
    line, code = failure_line(db)
    assert code == 1 and "connection is lost" in line and "SECRET" not in line
    line, code = failure_line(ValueError("bad\nsecond line"))
    assert code == 1 and "\n" not in line and "--debug" in line
