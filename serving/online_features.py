"""Features at event time: the batch run's features moved forward to the event's day and
updated with the event itself, so a payment at the airport a minute ago counts.

Features are "as of" the day after the event (everything up to and including the event's day
is known, as in a batch run the morning after). What an event refreshes:

- every `days_since_*`, `days_held_*` and `tenure_days` moves forward by the days passed
  since the snapshot; `age_years` is recomputed from the birth date;
- the event's own contributions: flow totals (`inflow_*`, `outflow_*`, `net_flow_*`,
  `inflow_amount_max_*`), `airport_*` and `abroad_*` totals, its category's count and sum
  in every window, `days_since_last_txn`, `days_since_last_<category|airport|abroad>` and
  `days_since_first_*` when it is the first, `balance_last` (when the event carries
  `balance_after`), the large-inflow features (by the batch's own rule,
  `features.income.large_inflow_frame`) and the life events derived from them
  (`features.life_events`, the same expressions as the batch).

What waits for the next batch run: payments that left a window since the snapshot (window
totals may count a few days too many), the balance means and minimums, income and salary
features, and products opened or closed since. Events booked before the snapshot date are
already in it and change no feature.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, timedelta
from typing import Any

import polars as pl

from features.categories import RuleSet
from features.config import FeatureConfig
from features.expressions import feature_name, full_years
from features.income import large_inflow_frame
from features.life_events import life_event_features


@dataclass(frozen=True)
class EventFacts:
    """What the categorisation rules and the signals say about one event."""

    day: date
    amount: float
    category: str
    airport: bool
    abroad: bool
    balance_after: float | None


def large_inflows(
    facts: list[EventFacts], incomes: list[float | None], config: FeatureConfig
) -> list[bool]:
    """The batch's large-inflow rule (`features.income.large_inflow_frame`) on each event."""
    floor = min(config.large_inflow_min_amount, config.large_inflow_absolute)
    if not any(f.amount >= floor for f in facts):  # the rule's own floor: no polars needed
        return [False] * len(facts)
    n = len(facts)
    rows = pl.LazyFrame(
        {
            "cix": list(range(n)),
            "day": [f.day for f in facts],
            "amount": [f.amount for f in facts],
            "category": [f.category for f in facts],
        },
        schema={"cix": pl.UInt32, "day": pl.Date, "amount": pl.Float64, "category": pl.String},
    )
    income = pl.LazyFrame(
        {"cix": list(range(n)), "income_monthly_amount": incomes},
        schema={"cix": pl.UInt32, "income_monthly_amount": pl.Float64},
    )
    # each event is judged as of the day after it (its own row only: one cix per event)
    days = {f.day for f in facts}
    large: set[int] = set()
    for day in days:
        on_day = rows.filter(pl.col("day") == day)
        out = large_inflow_frame(on_day, income, day + timedelta(days=1), config).collect()
        large.update(out["cix"].to_list())
    return [i in large for i in range(n)]


def _add(f: dict[str, Any], name: str, value: float) -> None:
    if name in f:
        f[name] = (f[name] or 0.0) + value


def _shift(f: dict[str, Any], days: int) -> None:
    for name, value in f.items():
        if value is None:
            continue
        if name.startswith(("days_since_", "days_held_")) or name == "tenure_days":
            f[name] = value + days


def _touch(f: dict[str, Any], what: str) -> None:
    """The event is the last of its kind (1 day before the features' date), maybe the first."""
    if f"days_since_last_{what}" in f:
        f[f"days_since_last_{what}"] = 1
    first = f"days_since_first_{what}"
    if first in f and f[first] is None:
        f[first] = 1


def refresh(
    features: dict[str, Any],
    features_as_of: date,
    birth_date: date,
    facts: EventFacts,
    large: bool,
    ruleset: RuleSet,
    config: FeatureConfig,
    age: int | None = None,
) -> tuple[dict[str, Any], date]:
    """The features moved to the day after the event and updated with it (see module doc).
    `age`: the age on the day after the event when the caller has it (`ages`)."""
    f = dict(features)
    as_of = facts.day + timedelta(days=1)
    if as_of <= features_as_of:  # already in the snapshot (booked before the batch's date)
        return f, features_as_of
    _shift(f, (as_of - features_as_of).days)
    if "age_years" in f:
        f["age_years"] = ages([birth_date], as_of)[0] if age is None else age
    amount = facts.amount
    kind = "inflow" if amount > 0 else "outflow"
    for w in config.windows:
        _add(f, feature_name(kind, "txn_count", w), 1)
        _add(f, feature_name(kind, "amount_sum", w), abs(amount))
        _add(f, feature_name("net_flow", "amount_sum", w), amount)
        if amount > 0:
            top = feature_name("inflow", "amount_max", w)
            if top in f:
                f[top] = max(f[top] or 0.0, amount)
        for flag, on in (("airport", facts.airport), ("abroad", facts.abroad)):
            if on:
                _add(f, feature_name(flag, "txn_count", w), 1)
                _add(f, feature_name(flag, "amount_sum", w), amount)
        if facts.category in ruleset.feature_categories:
            _add(f, feature_name(facts.category, "txn_count", w), 1)
            _add(f, feature_name(facts.category, "amount_sum", w), amount)
    if "days_since_last_txn" in f:
        f["days_since_last_txn"] = 1
    for flag, on in (("airport", facts.airport), ("abroad", facts.abroad)):
        if on:
            _touch(f, flag)
    _touch(f, facts.category)
    if facts.balance_after is not None and "balance_last" in f:
        f["balance_last"] = facts.balance_after
    if large:
        d = config.large_inflow_days
        top = feature_name("large_inflow", "amount_max", d)
        if top in f:
            f[top] = max(f[top] or 0.0, amount)
        income = f.get("income_monthly_amount")
        ratio = feature_name("large_inflow", "income_ratio", d)
        if ratio in f and income:
            f[ratio] = f[top] / income if top in f else amount / income
        if "days_since_last_large_inflow" in f:
            f["days_since_last_large_inflow"] = 1
    return f, as_of


def ages(births: list[date], as_of: date) -> list[int]:
    """`features.expressions.full_years` of each birth date on `as_of`, in one polars call."""
    frame = pl.DataFrame({"b": births}, schema={"b": pl.Date})
    return frame.select(full_years(pl.col("b"), as_of).alias("age"))["age"].to_list()


def update_life_events(rows: list[dict[str, Any]], ruleset: RuleSet, config: FeatureConfig) -> None:
    """Recompute the derived life events in place with the batch's own expressions (only the
    few columns they read are put in a frame)."""
    if not rows:
        return
    present = [e for info, e in life_event_features(ruleset, config) if info.name in rows[0]]
    if not present:
        return
    needed = sorted({n for e in present for n in e.meta.root_names()})
    small = pl.DataFrame(
        {n: [r.get(n) for r in rows] for n in needed},
        schema=dict.fromkeys(needed, pl.Float64),
        strict=False,
    )
    values = small.select(e.cast(pl.Float64) for e in present)
    for row, new in zip(rows, values.iter_rows(named=True), strict=True):
        row.update(new)
