"""The batch's categorisation rules on one event, cached per distinct event key."""

from __future__ import annotations

from collections import OrderedDict
from dataclasses import dataclass
from typing import Any

import polars as pl

from features.categories import RuleSet, airport_expr, category_expr
from serving.online_event import Event

MAX_CACHED = 50_000

_ROW_SCHEMA = {
    "counterparty_name": pl.String,
    "counterparty_iban": pl.String,
    "mcc": pl.Int32,
    "method": pl.String,
    "description": pl.String,
    "location": pl.String,
    "credit": pl.Boolean,
}


@dataclass(frozen=True)
class Categorised:
    category: str
    special: bool
    airport: bool


class Categoriser:
    """`features.categories` rules on single events, cached (oldest key out first when full)."""

    def __init__(self, ruleset: RuleSet) -> None:
        self.ruleset = ruleset
        self._cache: OrderedDict[tuple[Any, ...], Categorised] = OrderedDict()

    def __call__(self, event: Event) -> Categorised:
        key = (
            event.counterparty_name,
            event.counterparty_iban,
            event.mcc,
            event.method,
            event.description,
            event.location,
            event.amount > 0,
        )
        hit = self._cache.get(key)
        if hit is not None:
            return hit
        row = pl.DataFrame([key], schema=_ROW_SCHEMA, orient="row")
        cat, airport = row.select(
            category_expr(self.ruleset).cast(pl.String), airport_expr(self.ruleset)
        ).row(0)
        out = Categorised(str(cat), cat in self.ruleset.special, bool(airport))
        self._cache[key] = out
        if len(self._cache) > MAX_CACHED:
            self._cache.popitem(last=False)
        return out
