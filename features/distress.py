"""Responsible lending: is a customer in financial distress as of a date?

This is an eligibility check under a legal obligation (no credit offers to customers in
distress), NOT a feature: it may look at gambling payments for that purpose only, and its
output must never be joined to model features. It reads the real account state, so the
balance here includes every booking (special-category ones too).
"""

from __future__ import annotations

import logging
from datetime import date, datetime, time, timedelta

import polars as pl

from features.balance import daily_balances, opening_balances, overlap_days
from features.categories import load_ruleset
from features.config import FeatureConfig
from features.schemas import Tables
from features.transactions import booked_before, categorised, customer_index

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
        index.select("customer_id", "cix")
        .join(counts, on="cix", how="left")
        .join(below, on="cix", how="left")
        .with_columns(pl.when(reason != "").then(reason).alias("distress_reason"))
        .select(
            "customer_id",
            pl.col("distress_reason").is_not_null().alias("in_distress"),
            "distress_reason",
        )
        .sort("customer_id")
    )
