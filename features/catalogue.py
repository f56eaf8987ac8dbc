"""The feature catalogue (generated from the definitions that build the features) and plain-
language reason texts for feature values, used by serving to explain offers.

`reason_text(name, value, as_of)` takes one feature value; where a sentence needs a second
feature (the date of the large inflow whose amount is given), pass the whole feature row as
`value` (a mapping of feature name to value) and the related features are read from it.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import replace
from datetime import date, timedelta
from functools import lru_cache
from typing import Any

from features.categories import load_ruleset
from features.config import FeatureConfig
from features.expressions import FeatureInfo
from features.pipeline import feature_infos
from features.schemas import DEFAULT_PRODUCTS

__all__ = ["FeatureInfo", "catalogue", "reason_text"]


def catalogue(
    config: FeatureConfig | None = None, products: tuple[str, ...] | None = None
) -> list[FeatureInfo]:
    """Every feature `build_features` returns, in output order, with meaning and window.
    Without `products`, the configured products or the defaults are listed."""
    config = config or FeatureConfig()
    names = products or config.products or DEFAULT_PRODUCTS
    infos = feature_infos(config, load_ruleset(config), tuple(names))
    if config.currency == "EUR":
        return infos
    # The feature modules write meanings in EUR; the bank's currency replaces it here, once.
    swap = re.compile(r"\bEUR\b")
    return [replace(i, meaning=swap.sub(config.currency, i.meaning)) for i in infos]


@lru_cache(maxsize=8)
def _by_name(config: FeatureConfig) -> dict[str, FeatureInfo]:
    return {i.name: i for i in catalogue(config)}


def is_money(name: str) -> bool:
    """A feature measured in the bank's currency (amounts and balances): the one rule, used
    by the reason texts and by the baseline's log scaling."""
    return "amount" in name or (name.startswith("balance_") and "days" not in name)


def _eur(amount: float, currency: str = "EUR") -> str:
    return f"{currency} {abs(amount):,.0f}"


def _day(as_of: date, days: float) -> date:
    return as_of - timedelta(days=int(days))


def _since(name: str, days: float, as_of: date) -> str | None:
    m = re.fullmatch(r"days_since_(first|last)_(\w+)", name)
    if not m:
        return None
    when = _day(as_of, days)
    kind, what = m.groups()
    if what == "child_benefit" and kind == "first":
        return f"child benefit started {when:%Y-%m}"
    if what == "large_inflow":
        return f"large inflow on {when:%Y-%m-%d}"
    label = {"airport": "payment at an airport", "abroad": "payment abroad"}.get(
        what, what.replace("_", " ") + " payment"
    )
    return f"{kind} {label} on {when:%Y-%m-%d}"


def _from_row(name: str, row: Mapping[str, Any], as_of: date, currency: str) -> str | None:
    """Sentences that combine a feature with a related one from the same row."""
    if name.startswith("large_inflow"):
        amount = next((v for k, v in row.items() if k.startswith("large_inflow_amount_max")), None)
        days = row.get("days_since_last_large_inflow")
        if amount is not None and days is not None:
            return f"large inflow of {_eur(amount, currency)} on {_day(as_of, days):%Y-%m-%d}"
    if (
        name.startswith("child_benefit_started")
        and row.get("days_since_first_child_benefit") is not None
    ):
        return _since(
            "days_since_first_child_benefit", row["days_since_first_child_benefit"], as_of
        )
    if name.startswith("first_") and name.endswith("d"):
        flag = name.split("_")[1]
        days = row.get(f"days_since_first_{flag}")
        if days is not None:
            return _since(f"days_since_first_{flag}", days, as_of)
    if name == "salary_increase_90d" and row.get("salary_change_ratio_90d") is not None:
        return f"salary rose by {row['salary_change_ratio_90d']:.0%} over the last 90 days"
    return None


def reason_text(name: str, value: Any, as_of: date, config: FeatureConfig | None = None) -> str:
    """A plain-language sentence for one feature value (or for `row[name]` when `value` is the
    whole feature row), e.g. "child benefit started 2026-09"."""
    cfg = config or FeatureConfig()
    row = value if isinstance(value, Mapping) else {name: value}
    v = row.get(name)
    if isinstance(value, Mapping) and (text := _from_row(name, row, as_of, cfg.currency)):
        return text
    info = _by_name(cfg).get(name)
    meaning = info.meaning if info else name.replace("_", " ")
    if v is None:
        return f"{meaning}: none"
    if info is not None and isinstance(info.fill, bool):
        v = bool(v)  # a flag passed as a number (e.g. from a float matrix)
    if isinstance(v, bool):
        return meaning if v else f"not: {meaning}"
    if name.startswith("days_since_") and (text := _since(name, v, as_of)):
        return text
    if "ratio" in name:
        return f"{meaning}: {v:.2f}"
    if is_money(name):
        money = _eur(v, cfg.currency)
        return f"{meaning}: {money}" if v >= 0 else f"{meaning}: minus {money}"
    if name.startswith("days_held_"):
        return (
            f"{name.removeprefix('days_held_').replace('_', ' ')} held since {_day(as_of, v):%Y-%m}"
        )
    return f"{meaning}: {v:,.0f}" if isinstance(v, int | float) else f"{meaning}: {v}"
