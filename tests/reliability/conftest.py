"""Reliability tests: real `propensity` processes killed, starved of disk, cut off from
PostgreSQL, fed hostile ids and made to wait for the ledger lock.

The ledger fixtures are those of tests/serving (SQLite and the real PostgreSQL server; in CI
the PostgreSQL tests fail instead of skipping when the server is down). Each test counts what
it tried in `TALLY`; the session prints the totals (kills, faults, hostile inputs).
"""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path

import pytest

HERE = Path(__file__).parent
sys.path.insert(0, str(HERE))
sys.path.insert(0, str(HERE.parent / "serving"))  # serving_world, the small bank builder

_spec = importlib.util.spec_from_file_location(
    "serving_conftest", HERE.parent / "serving" / "conftest.py"
)
assert _spec is not None and _spec.loader is not None
_serving = importlib.util.module_from_spec(_spec)
sys.modules["serving_conftest"] = _serving  # tests import PgSchemas from it by this name
_spec.loader.exec_module(_serving)
pg_base_url = _serving.pg_base_url
new_ledger = _serving.new_ledger
ledger_url = _serving.ledger_url
PgSchemas = _serving.PgSchemas

from rig import TALLY  # noqa: E402  (after the path set-up above)


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter) -> None:
    if TALLY:
        tried = ", ".join(f"{k} {v}" for k, v in sorted(TALLY.items()))
        terminalreporter.write_line(f"reliability: tried {tried}")
