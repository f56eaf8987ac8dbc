"""Responsible lending: is a customer in financial distress as of a date?

This is an eligibility check under a legal obligation (no credit offers to customers in
distress), NOT a feature: it may look at gambling payments for that purpose only, and its
output must never be joined to model features. It reads the real account state, so the
balance here includes every booking (special-category ones too).
"""

from __future__ import annotations

import logging
from datetime import date, datetime, time, timedelta
from typing import TYPE_CHECKING

import numpy as np
import polars as pl

from features.balance import (
    add_opening,
    daily_balances,
    flow_grid,
    opening_balances,
    overlap_days,
)
from features.categories import load_ruleset
from features.config import DistressConfig, FeatureConfig
from features.schemas import Tables
from features.transactions import booked_before, categorised, customer_index

if TYPE_CHECKING:
    from features.pipeline import Scanned

log = logging.getLogger(__name__)


def distress_flags(tables: Tables, as_of: date, config: FeatureConfig) -> pl.LazyFrame:
    """`customer_id`, `in_distress`, `distress_reason` (comma-separated codes or null) for
    every customer who was a customer before `as_of`."""
    cfg = config.distress
    ruleset = load_ruleset(config)
    start = as_of - timedelta(days=cfg.window_days)
    index = customer_index(tables.customers, as_of).cache()
    # categories are needed only in the window (each row's category depends on that row
    # alone), the balance history needs every row's amount but no category: categorising
    # only the window's rows saves most of this function's cost on a long history
    in_window = tables.transactions.filter(pl.col("booked_at") >= datetime.combine(start, time()))
    recent = categorised(in_window, ruleset, as_of, index)
    rows = booked_before(tables.transactions, as_of, index).select(
        "cix", pl.col("booked_at").dt.date().alias("day"), "amount"
    )
    counts = recent.group_by("cix").agg(
        (pl.col("category") == "debt_collection").sum().alias("debt"),
        (pl.col("category") == "gambling").sum().alias("gambling"),
    )
    opening = opening_balances(booked_before(tables.transactions, as_of), index)
    daily = daily_balances(rows, opening)
    below = (
        daily.with_columns(overlap_days(start, as_of).alias("d"))
        .group_by("cix")
        .agg(pl.col("d").filter(pl.col("balance") < 0).sum().alias("below"))
    )
    return _flags(index.select("customer_id", "cix"), counts, below, cfg)


def _flags(
    index: pl.LazyFrame, counts: pl.LazyFrame, below: pl.LazyFrame, cfg: DistressConfig
) -> pl.LazyFrame:
    """The flags from per-`cix` counts (`debt`, `gambling`) and days below zero (`below`)."""
    checks = [
        ("debt_collection", pl.col("debt"), cfg.debt_collection_min_count),
        ("below_zero", pl.col("below"), cfg.days_below_zero),
        ("gambling", pl.col("gambling"), cfg.gambling_min_count),
    ]
    reasons = [
        pl.when(col.fill_null(0) >= limit).then(pl.lit(code))
        for code, col, limit in checks
        if limit is not None
    ]
    reason = pl.concat_str(reasons, separator=",", ignore_nulls=True) if reasons else pl.lit("")
    return (
        index.join(counts, on="cix", how="left")
        .join(below, on="cix", how="left")
        .with_columns(pl.when(reason != "").then(reason).alias("distress_reason"))
        .select(
            "customer_id",
            pl.col("distress_reason").is_not_null().alias("in_distress"),
            "distress_reason",
        )
        .sort("customer_id")
    )


def distress_from_scan(scanned: Scanned, cfg: DistressConfig) -> pl.DataFrame:
    """`distress_flags` of the customers of a feature scan (`features.pipeline.Scanned`: every
    row of theirs booked before the date, special ones too, categorised, and the opening
    balances), without reading the transactions again. Days below zero come from a dense
    grid of the real balance (customers x days since the earliest booking, `flow_grid`):
    each day's net in row order, then the running sum per customer in day order plus the
    opening balance, the additions `daily_balances` makes, so the same balances."""
    as_of = scanned.before
    start = as_of - timedelta(days=cfg.window_days)
    rows, index = scanned.rows, scanned.index
    kinds = scanned.mapping.select(
        "_rule_key",
        debt=pl.col("category") == "debt_collection",
        gambling=pl.col("category") == "gambling",
    )
    counts = (
        rows.lazy()
        .filter(pl.col("booked_at") >= datetime.combine(start, time()))
        .join(kinds.lazy(), on="_rule_key")
        .group_by("cix")
        .agg(pl.col("debt").sum(), pl.col("gambling").sum())
    )
    daily = rows.select("cix", "amount", day=pl.col("booked_at").dt.date())
    first = daily["day"].min() if daily.height else as_of
    assert isinstance(first, date)
    grid = add_opening(flow_grid(daily, index.height, min(first, start), as_of), scanned.opening)
    del daily
    lo = (start - grid.start).days
    window = grid.balance[:, lo:]
    counted = np.arange(lo, lo + window.shape[1])[None, :] >= grid.first[:, None]
    below = (counted & (window < 0)).sum(axis=1)
    per_cix = pl.DataFrame({"cix": np.arange(index.height, dtype=np.uint32), "below": below})
    ids = index.lazy().select("customer_id", pl.col("cix").cast(pl.UInt32))
    return _flags(ids, counts, per_cix.lazy(), cfg).collect()
