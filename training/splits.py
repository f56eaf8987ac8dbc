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
from features.validate import transaction_gap_warnings
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


@dataclass(frozen=True)
class Coverage:
    """Where the data is: the transactions' first day and the day after their last (cut at
    `as_of` when training as of a date), and how far the other tables reach."""

    start: date
    end: date
    products_end: date | None
    customers_end: date | None
    as_of: date | None = None

    def warnings(self) -> list[str]:
        """Transactions ending long before the products or customers tables (the rule lives
        in `features.validate`)."""
        last = self.end - timedelta(days=1)
        return transaction_gap_warnings(
            last, {"products": self.products_end, "customers": self.customers_end}
        )


@dataclass(frozen=True)
class TrainingPlan:
    """The calendar of one training run: where the transactions are and the dates chosen."""

    coverage: Coverage
    snapshots: Snapshots
    sample: str | None = None
    """Who is trained on (`training.sample.Sample.line`), once the sample is drawn."""

    def lines(self) -> list[str]:
        """The plan in plain lines (printed by `propensity train`, logged by the run)."""
        c, s = self.coverage, self.snapshots
        cut = f", cut at the as-of date {c.as_of}" if c.as_of else ""
        train = f"{s.train[0]} .. {s.train[-1]} ({len(s.train)} monthly snapshots)"
        return [
            f"transactions cover {c.start} .. {c.end - timedelta(days=1)}{cut}",
            f"horizon {s.horizon_days} days; training {train}; validation {s.validation}; "
            f"test {s.test} (its horizon ends {s.test + timedelta(days=s.horizon_days)})",
            *([self.sample] if self.sample else []),
        ]


def data_coverage(tables: Tables, as_of: date | None = None) -> Coverage:
    """The coverage of `tables` (transactions decide the calendar; products and customers are
    only compared with them). Raises when there are no transactions."""
    txn = tables.transactions.select(
        pl.col("booked_at").min().dt.date().alias("lo"),
        pl.col("booked_at").max().dt.date().alias("hi"),
    ).collect()
    lo, hi = txn.row(0)
    if lo is None or hi is None:
        before = f" booked before the as-of date {as_of}" if as_of is not None else ""
        raise PropensityError(
            f"transactions: no rows{before} to train on (after the consent filter)"
        )
    products_end = tables.products.select(pl.col("opened_at").max()).collect().item()
    customers_end = tables.customers.select(pl.col("customer_since").max()).collect().item()
    end = hi + timedelta(days=1)
    if as_of is not None:
        end = min(end, as_of)
    return Coverage(lo, end, products_end, customers_end, as_of)


def data_window(tables: Tables) -> tuple[date, date]:
    """(first day, day after the last day) of the transactions: the calendar's bounds."""
    cov = data_coverage(tables)
    return cov.start, cov.end


def choose_snapshots(data_start: date, data_end: date, config: TrainingConfig) -> Snapshots:
    """Dates from the data (or the config's overrides), checked against the leakage rule."""
    return _checked(
        choose_snapshots_unchecked(data_start, data_end, config), data_start, data_end, config
    )


def choose_snapshots_unchecked(
    data_start: date, data_end: date, config: TrainingConfig
) -> Snapshots:
    """The dates the rule derives from `[data_start, data_end)` (or the overrides), unchecked."""
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
    return Snapshots(train, validation, test, config.horizon_days)


def _checked(s: Snapshots, data_start: date, data_end: date, config: TrainingConfig) -> Snapshots:
    try:
        check_snapshots(s, data_start, data_end)
    except ConfigError as exc:
        raise ConfigError(f"{exc}. {what_fits(data_start, data_end, config)}") from None
    return s


def calendar_warnings(s: Snapshots, data_start: date, config: TrainingConfig) -> list[str]:
    """Dates the rule allows but that see little data: training snapshots with less than
    `min_history_days` of transactions before them (given explicitly in the config)."""
    earliest = data_start + timedelta(days=config.min_history_days)
    short = [d for d in s.train if d < earliest]
    if not short:
        return []
    return [
        f"training snapshot(s) {', '.join(map(str, short))} have less than "
        f"{config.min_history_days} days of transactions before them (transactions start "
        f"{data_start}): their features are incomplete"
    ]


def what_fits(data_start: date, data_end: date, config: TrainingConfig) -> str:
    """The advice for a calendar the leakage rule rejects: the longest horizon that fits the
    transactions, or how much history the current horizon needs."""
    span = (data_end - data_start).days
    need = config.min_history_days + 3 * config.horizon_days + 62
    text = (
        f"The transactions cover {data_start} to {data_end - timedelta(days=1)} ({span} days); "
        f"with --horizon-days {config.horizon_days} the calendar needs about {need} days "
        f"(min_history_days + 3 horizons + month rounding)"
    )
    for horizon in range(config.horizon_days - 1, 13, -1):
        trial = config.model_copy(update={"horizon_days": horizon})
        try:
            s = choose_snapshots_unchecked(data_start, data_end, trial)
            check_snapshots(s, data_start, data_end)
        except ConfigError:
            continue
        return (
            f"{text}; --horizon-days {horizon} fits (test {s.test}, validation "
            f"{s.validation}, {len(s.train)} training month(s) from {s.train[0]})"
        )
    return f"{text}; no horizon of 14 days or more fits: the data is too short"


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
