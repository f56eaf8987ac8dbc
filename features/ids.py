"""The grammar of every identifier that reaches a file name, a ledger column or a channel file,
and the ranges of dates and sizes the system accepts.

Run ids, campaign ids and product names become parts of paths (`out/<run_id>/`,
`reports/<run_id>.html`), model names (`propensity-<product>`) and ledger keys, so they are
restricted to a portable grammar: a letter or digit, then letters, digits, `_`, `.` or `-`,
at most `NAME_MAX` characters. That excludes `.`, `..`, `a/b`, `/abs`, whitespace and any
leading `=`, `+`, `-`, `@` (spreadsheet formulas). Customer ids come from the bank's data: any
printable text without control characters, at most `CUSTOMER_ID_MAX` characters (channel files
escape a leading formula character instead, see `serving.outputs`).

The ledger's columns have exactly these lengths (`serving.ledger`), so SQLite and PostgreSQL
accept and refuse the same values. Everything is checked before anything is trained or written.
"""

from __future__ import annotations

import re
from datetime import date

from features.errors import ConfigError

NAME_MAX = 64
CUSTOMER_ID_MAX = 64
NAME_PATTERN = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]*")
NAME_GRAMMAR = f"a letter or digit, then letters, digits, '_', '.' or '-'; at most {NAME_MAX}"
_CONTROL = re.compile(r"[\x00-\x1f\x7f]")

# dates and sizes outside these are mistakes (and overflow date arithmetic or int64 columns)
MIN_DATE = date(1900, 1, 1)
MAX_DATE = date(2200, 12, 31)
MAX_WINDOW_DAYS = 36_600  # 100 years
MAX_COUNT = 1_000_000_000  # capacities and other per-run counts


def name_problem(value: object) -> str | None:
    """Why `value` is not a valid name (run id, campaign id, product), or None when it is."""
    if not isinstance(value, str):
        return f"must be text, got {type(value).__name__}"
    if not value:
        return "must not be empty"
    if len(value) > NAME_MAX:
        return f"is {len(value)} characters long, at most {NAME_MAX} allowed"
    if not NAME_PATTERN.fullmatch(value):
        return f"must be {NAME_GRAMMAR} characters"
    return None


def _check_name(value: object, kind: str, where: str, example: str) -> str:
    problem = name_problem(value)
    if problem is not None:
        raise ConfigError(f"{where} {_shown(value)}: a {kind} {problem} (example: {example})")
    assert isinstance(value, str)
    return value


def _shown(value: object) -> str:
    text = repr(value)
    return text if len(text) <= 40 else text[:37] + "...'"


def validate_run_id(value: object, where: str = "--run-id") -> str:
    """A run id (`run-2026-11-02`), or ConfigError naming `where` (exit 2)."""
    return _check_name(value, "run id", where, "run-2026-11-02")


def validate_campaign_id(value: object, where: str = "campaign id") -> str:
    """A campaign id (`savings-q4`), or ConfigError naming `where` (exit 2)."""
    return _check_name(value, "campaign id", where, "savings-q4")


def validate_product(value: object, where: str = "product") -> str:
    """A product name (`child_savings`), or ConfigError naming `where` (exit 2)."""
    return _check_name(value, "product name", where, "child_savings")


def customer_id_problem(value: object) -> str | None:
    """Why `value` is not a valid customer id, or None when it is."""
    if not isinstance(value, str) or not value:
        return "must be non-empty text"
    if len(value) > CUSTOMER_ID_MAX:
        return f"is {len(value)} characters long, at most {CUSTOMER_ID_MAX} allowed"
    if _CONTROL.search(value):
        return "contains a control character (tab, newline, ...)"
    return None


def validate_customer_id(value: object, where: str = "customer id") -> str:
    """A customer id, or ConfigError naming `where` (exit 2)."""
    problem = customer_id_problem(value)
    if problem is not None:
        raise ConfigError(f"{where} {_shown(value)}: a customer id {problem} (example: C000123)")
    assert isinstance(value, str)
    return value


def date_problem(value: date) -> str | None:
    """Why a date is outside the accepted range, or None."""
    if not MIN_DATE <= value <= MAX_DATE:
        return f"is outside {MIN_DATE.isoformat()}..{MAX_DATE.isoformat()}"
    return None


def validate_date(value: date, where: str) -> date:
    """`value` when it lies in MIN_DATE..MAX_DATE, else ConfigError naming `where`."""
    problem = date_problem(value)
    if problem is not None:
        raise ConfigError(f"{where} {value.isoformat()} {problem} (example: 2026-11-02)")
    return value
