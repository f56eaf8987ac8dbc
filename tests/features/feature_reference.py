"""A slow, obviously correct row-by-row reference of the feature definitions (Python loops
over dicts), to check the polars pipeline against. Categorisation comes from the row-level
rule engine (`explain_categories`), which is tested on its own."""

from __future__ import annotations

from collections import defaultdict
from datetime import date, timedelta
from typing import Any

import polars as pl

from features.categories import explain_categories, load_ruleset
from features.config import FeatureConfig
from features.schemas import Tables

INCOME = ("salary", "pension", "benefits")


def _rows(tables: Tables, config: FeatureConfig, as_of: date) -> list[dict[str, Any]]:
    ruleset = load_ruleset(config)
    frame = explain_categories(tables.transactions, ruleset).collect()
    out = []
    for r in frame.to_dicts():
        if r["booked_at"].date() >= as_of:
            continue
        r["day"] = r["booked_at"].date()
        r["age"] = (as_of - r["day"]).days
        r["special"] = r["category"] in ruleset.excluded
        r["abroad"] = r["country"] is not None and r["country"] != config.home_country
        out.append(r)
    return out


def _customer(c: dict[str, Any], products: list[dict[str, Any]], names, as_of: date) -> dict:
    b = c["birth_date"]
    age = as_of.year - b.year - ((b.month, b.day) > (as_of.month, as_of.day))
    f: dict[str, Any] = {"age_years": age, "tenure_days": (as_of - c["customer_since"]).days}
    held = [
        p
        for p in products
        if p["opened_at"] < as_of and (p["closed_at"] is None or p["closed_at"] >= as_of)
    ]
    for name in names:
        mine = [p["opened_at"] for p in held if p["product"] == name]
        f[f"holds_{name}"] = bool(mine)
        f[f"days_held_{name}"] = (as_of - max(mine)).days if mine else None
    f["products_held_count"] = sum(f[f"holds_{n}"] for n in names)
    return f


def _windows(rows: list[dict], categories, config: FeatureConfig) -> dict[str, Any]:
    f: dict[str, Any] = {}
    for w in config.windows:
        win = [r for r in rows if r["age"] < w]
        ins = [r["amount"] for r in win if r["amount"] > 0]
        outs = [r["amount"] for r in win if r["amount"] < 0]
        f[f"inflow_txn_count_{w}d"] = len(ins)
        f[f"inflow_amount_sum_{w}d"] = sum(ins)
        f[f"outflow_txn_count_{w}d"] = len(outs)
        f[f"outflow_amount_sum_{w}d"] = -sum(outs)
        f[f"net_flow_amount_sum_{w}d"] = sum(ins) + sum(outs)
        f[f"inflow_amount_max_{w}d"] = max(ins) if ins else None
        for flag in ("airport", "abroad"):
            sel = [r["amount"] for r in win if r[flag]]
            f[f"{flag}_txn_count_{w}d"] = len(sel)
            f[f"{flag}_amount_sum_{w}d"] = sum(sel)
        for c in categories:
            sel = [r["amount"] for r in win if r["category"] == c]
            f[f"{c}_txn_count_{w}d"] = len(sel)
            f[f"{c}_amount_sum_{w}d"] = sum(sel)
    return f


def _recency(rows: list[dict], config: FeatureConfig) -> dict[str, Any]:
    def since(sel: list[dict], first: bool = False) -> int | None:
        if not sel:
            return None
        return max(r["age"] for r in sel) if first else min(r["age"] for r in sel)

    f: dict[str, Any] = {"days_since_last_txn": since(rows)}
    for c in config.recency_categories:
        f[f"days_since_last_{c}"] = since([r for r in rows if r["category"] == c])
    for flag in ("airport", "abroad"):
        f[f"days_since_last_{flag}"] = since([r for r in rows if r[flag]])
        f[f"days_since_first_{flag}"] = since([r for r in rows if r[flag]], first=True)
    cb = [r for r in rows if r["category"] == "child_benefit"]
    f["days_since_first_child_benefit"] = since(cb, first=True)
    return f


def _balance(all_rows: list[dict], rows: list[dict], config: FeatureConfig, as_of: date) -> dict:
    f: dict[str, Any] = {"balance_last": None}
    for w in config.windows:
        f |= {f"balance_mean_{w}d": None, f"balance_min_{w}d": None}
        f[f"balance_days_below_zero_{w}d"] = 0
    if not rows:
        return f
    first = min(all_rows, key=lambda r: (r["booked_at"], r["transaction_id"]))
    opening = (
        (first["balance_after"] or 0.0) - first["amount"]
        if first["balance_after"] is not None
        else 0.0
    )
    by_day: dict[date, float] = defaultdict(float)
    for r in rows:
        by_day[r["day"]] += r["amount"]
    start = min(by_day)
    eod, bal, d = {}, opening, start
    while d < as_of:
        bal += by_day.get(d, 0.0)
        eod[d] = bal
        d += timedelta(days=1)
    f["balance_last"] = eod[as_of - timedelta(days=1)]
    for w in config.windows:
        vals = [v for day, v in eod.items() if day >= as_of - timedelta(days=w)]
        f[f"balance_mean_{w}d"] = sum(vals) / len(vals)
        f[f"balance_min_{w}d"] = min(vals)
        f[f"balance_days_below_zero_{w}d"] = sum(v < 0 for v in vals)
    return f


def _income(rows: list[dict], config: FeatureConfig) -> dict[str, Any]:
    def month(r: dict) -> tuple[int, int]:
        return (r["day"].year, r["day"].month)

    sal = [r for r in rows if r["category"] == "salary" and r["age"] < 365]
    recent = [r["amount"] for r in sal if r["age"] < 90]
    prior = [r["amount"] for r in sal if 90 <= r["age"] < 180]
    inc = [r for r in rows if r["category"] in INCOME and r["age"] < 365]
    months = {month(r) for r in sal}
    ratio = sum(recent) / len(recent) / (sum(prior) / len(prior)) - 1 if recent and prior else None
    return {
        "salary_detected": len({month(r) for r in sal if r["age"] < 90}) >= 2,
        "salary_months_count_365d": len(months),
        "salary_monthly_amount": sum(r["amount"] for r in sal) / len(months) if months else None,
        "salary_amount_mean_90d": sum(recent) / len(recent) if recent else None,
        "salary_change_ratio_90d": ratio,
        "salary_increase_90d": ratio is not None and ratio >= config.salary_increase_ratio,
        "income_monthly_amount": (
            sum(r["amount"] for r in inc) / len({month(r) for r in inc}) if inc else None
        ),
        "pension_received_90d": any(r["category"] == "pension" and r["age"] < 90 for r in rows),
        "benefits_received_90d": any(r["category"] == "benefits" and r["age"] < 90 for r in rows),
    }


def _large(rows: list[dict], income: float | None, config: FeatureConfig) -> dict[str, Any]:
    d = config.large_inflow_days
    large = [
        r
        for r in rows
        if r["amount"] > 0
        and r["category"] not in (*INCOME, "child_benefit")
        and (
            r["amount"] >= config.large_inflow_absolute
            or (
                income is not None
                and r["amount"] >= config.large_inflow_income_multiple * income
                and r["amount"] >= config.large_inflow_min_amount
            )
        )
    ]
    top = max((r["amount"] for r in large if r["age"] < d), default=None)
    return {
        f"large_inflow_amount_max_{d}d": top,
        f"large_inflow_income_ratio_{d}d": top / income if top and income else None,
        "days_since_last_large_inflow": min((r["age"] for r in large), default=None),
    }


def reference_features(
    tables: Tables, as_of: date, config: FeatureConfig, products: tuple[str, ...]
) -> pl.DataFrame:
    """The expected feature rows, computed one customer at a time."""
    ruleset = load_ruleset(config)
    rows = _rows(tables, config, as_of)
    prods = tables.products.collect().to_dicts()
    out = []
    for c in tables.customers.collect().sort("customer_id").to_dicts():
        if c["customer_since"] >= as_of:
            continue
        cid = c["customer_id"]
        mine_all = [r for r in rows if r["customer_id"] == cid]
        mine = [r for r in mine_all if not r["special"]]
        f: dict[str, Any] = {"customer_id": cid, "as_of": as_of}
        f |= _customer(c, [p for p in prods if p["customer_id"] == cid], products, as_of)
        f |= _windows(mine, ruleset.feature_categories, config)
        f |= _recency(mine, config)
        f |= _balance(mine_all, mine, config, as_of)
        f |= _income(mine, config)
        f |= _large(mine, f["income_monthly_amount"], config)
        n, t, d = config.child_benefit_new_days, config.first_trip_days, config.large_inflow_days
        cb = f["days_since_first_child_benefit"]
        f[f"child_benefit_started_{n}d"] = cb is not None and cb < n
        for flag in ("airport", "abroad"):
            first = f[f"days_since_first_{flag}"]
            f[f"first_{flag}_{t}d"] = first is not None and first < t
        f[f"large_inflow_{d}d"] = f[f"large_inflow_amount_max_{d}d"] is not None
        out.append(f)
    return pl.DataFrame(out, infer_schema_length=None)
