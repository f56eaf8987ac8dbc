"""Safe casts from whatever a source file holds to the contract's dtypes.

Every cast is non-strict; a value that was present before the cast and is null after it is a
cast failure, which the validator reports with an example row. Nothing is rounded or guessed:
"12,50" is not an amount and "maybe" is not a bool.
"""

from __future__ import annotations

from datetime import datetime
from zoneinfo import ZoneInfo

import polars as pl

TRUE_WORDS = ("true", "t", "yes", "y", "1")
FALSE_WORDS = ("false", "f", "no", "n", "0")
DATETIME_FORMATS = (
    "%Y-%m-%d %H:%M:%S",
    "%Y-%m-%dT%H:%M:%S",
    "%Y-%m-%d %H:%M:%S%.f",
    "%Y-%m-%dT%H:%M:%S%.f",
    "%Y-%m-%d %H:%M",
)


LOCAL_TIMEZONE = "Europe/Amsterdam"
"""The default local time of the bank (`[data] timezone` overrides it)."""


def localize(col: pl.Expr, timezone: str = LOCAL_TIMEZONE) -> pl.Expr:
    """A zoned datetime as naive local time in `timezone` (the contract's representation)."""
    return col.dt.convert_time_zone(timezone).dt.replace_time_zone(None)


def local_now(timezone: str = LOCAL_TIMEZONE) -> datetime:
    """Now as naive local time in `timezone`: how the contract's timestamps are held (an
    objection recorded now compares with the consents table's `updated_at`)."""
    return datetime.now(ZoneInfo(timezone)).replace(tzinfo=None)


def describe_dtype(dtype: pl.DataType) -> str:
    """How a contract type reads in an error message."""
    if isinstance(dtype, pl.Datetime):
        return "datetime (YYYY-MM-DD HH:MM:SS)"
    if dtype == pl.Date:
        return "date (YYYY-MM-DD)"
    if dtype == pl.Boolean:
        return "bool (true/false)"
    if dtype.is_float():
        return "number (Float64, decimal point)"
    if dtype.is_integer():
        return "whole number"
    return str(dtype)


def _from_string(col: pl.Expr, target: pl.DataType) -> pl.Expr:
    text = col.str.strip_chars()
    if target == pl.Boolean:
        lower = text.str.to_lowercase()
        return (
            pl.when(lower.is_in(TRUE_WORDS))
            .then(True)
            .when(lower.is_in(FALSE_WORDS))
            .then(False)
            .otherwise(None)
        )
    if target == pl.Date:
        return text.str.to_date("%Y-%m-%d", strict=False)
    if isinstance(target, pl.Datetime):
        parsed = [text.str.to_datetime(f, strict=False, time_unit="us") for f in DATETIME_FORMATS]
        as_date = text.str.to_date("%Y-%m-%d", strict=False).cast(target)
        return pl.coalesce(*parsed, as_date)
    if target.is_integer():
        as_float = text.cast(pl.Float64, strict=False)
        return pl.when(as_float == as_float.round()).then(as_float).cast(target, strict=False)
    return text.cast(target, strict=False)


def _from_float(col: pl.Expr, target: pl.DataType) -> pl.Expr:
    if target.is_integer():
        return pl.when(col == col.round()).then(col).cast(target, strict=False)
    return col.cast(target, strict=False)


def to_contract(name: str, source: pl.DataType, target: pl.DataType) -> pl.Expr | None:
    """An expression casting column `name` from `source` to `target`, or None if impossible.

    Datetimes with a time zone become naive local time (`LOCAL_TIMEZONE`; the loader has
    already localised them to the configured zone), as the contract says.
    """
    col = pl.col(name)
    if isinstance(source, pl.Categorical | pl.Enum):
        col, source = col.cast(pl.String), pl.String()
    if source == target:
        return col.alias(name)
    if source == pl.Null:
        return pl.lit(None, target).alias(name)
    if source == pl.String:
        return _from_string(col, target).alias(name)
    if target == pl.String:
        return col.cast(pl.String).alias(name) if source.is_integer() else None
    if isinstance(target, pl.Datetime) and isinstance(source, pl.Datetime | pl.Date):
        if isinstance(source, pl.Datetime) and source.time_zone is not None:
            col = localize(col)
        return col.cast(target).alias(name)
    if source.is_float() and target.is_numeric():
        return _from_float(col, target).alias(name)
    if source.is_integer() and target.is_numeric():
        return col.cast(target, strict=False).alias(name)
    if source.is_integer() and target == pl.Boolean:
        return pl.when(col.is_in([0, 1])).then(col == 1).alias(name)
    return None  # e.g. a timestamp where a calendar date is expected: ambiguous, refuse
