"""Choosing the snapshot dates: monthly training snapshots, a validation and a test snapshot.

Rule (no label leaks across splits): for every training snapshot T, T + H <= validation;
validation + H <= test; test + H <= end of data (the test horizon is complete).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, timedelta

import polars as pl

from features.errors import ConfigError, PropensityError
from features.schemas import Tables
from training.config import TrainingConfig


@dataclass(frozen=True)
class Snapshots:
    """The dates of the three splits (all label windows are [T, T + horizon_days))."""

    train: tuple[date, ...]
    validation: date
    test: date
    horizon_days: int

    @property
    def all_dates(self) -> list[date]:
        return [*self.train, self.validation, self.test]


def month_start(day: date) -> date:
    return date(day.year, day.month, 1)


def previous_month(day: date) -> date:
    return date(day.year - 1, 12, 1) if day.month == 1 else date(day.year, day.month - 1, 1)


def data_window(tables: Tables) -> tuple[date, date]:
    """(first day, day after the last day) observed in transactions and product openings."""
    txn = tables.transactions.select(
        pl.col("booked_at").min().dt.date().alias("lo"),
        pl.col("booked_at").max().dt.date().alias("hi"),
    )
    prod = tables.products.select(
        pl.col("opened_at").min().alias("lo"), pl.col("opened_at").max().alias("hi")
    )
    row = pl.concat([txn, prod]).select(pl.col("lo").min(), pl.col("hi").max()).collect().row(0)
    if row[0] is None or row[1] is None:
        raise PropensityError("transactions: no rows to train on (after the consent filter)")
    return row[0], row[1] + timedelta(days=1)


def choose_snapshots(data_start: date, data_end: date, config: TrainingConfig) -> Snapshots:
    """Dates from the data (or the config's overrides), checked against the leakage rule."""
    h = timedelta(days=config.horizon_days)
    test = config.test_as_of or month_start(data_end - h)
    validation = config.validation_as_of or month_start(test - h)
    if config.train_as_of is not None:
        train = tuple(sorted(config.train_as_of))
    else:
        earliest = data_start + timedelta(days=config.min_history_days)
        months: list[date] = []
        cursor = month_start(validation - h)
        while len(months) < config.n_train_snapshots and cursor >= earliest:
            months.append(cursor)
            cursor = previous_month(cursor)
        train = tuple(reversed(months))
    snapshots = Snapshots(train, validation, test, config.horizon_days)
    check_snapshots(snapshots, data_start, data_end)
    return snapshots


def check_snapshots(s: Snapshots, data_start: date, data_end: date) -> None:
    """Raise ConfigError naming the offending date when the split rule is broken."""
    h = timedelta(days=s.horizon_days)
    if s.test + h > data_end:
        raise ConfigError(
            f"test snapshot {s.test}: its {s.horizon_days}-day horizon ends {s.test + h}, "
            f"after the data ends ({data_end - timedelta(days=1)})"
        )
    if s.validation + h > s.test:
        raise ConfigError(
            f"validation snapshot {s.validation} + {s.horizon_days} days overlaps the test "
            f"snapshot {s.test}"
        )
    if not s.train:
        raise ConfigError(
            f"no training snapshot fits between the data start ({data_start}) and the "
            f"validation snapshot {s.validation} minus the horizon: the data is too short"
        )
    late = [d for d in s.train if d + h > s.validation]
    if late:
        raise ConfigError(
            f"training snapshot {late[0]} + {s.horizon_days} days overlaps the validation "
            f"snapshot {s.validation}"
        )
    early = [d for d in s.train if d <= data_start]
    if early:
        raise ConfigError(f"training snapshot {early[0]} is not after the data start {data_start}")
