"""Where the time of `build_features` goes: its stages run one after the other (in the
pipeline some run side by side on the numpy thread), each timed in wall and CPU seconds
(all threads of the process). For `benchmarks/features.py --stages`."""

from __future__ import annotations

import time
from collections.abc import Callable
from datetime import date, timedelta
from typing import Any

import polars as pl

from features.balance import add_opening, balance_frame, first_row_openings, flow_grid
from features.categories import load_ruleset
from features.config import FeatureConfig
from features.consent import profilable_ids
from features.customers import customer_base, product_frame, product_names
from features.income import income_frame, large_inflow_frame
from features.pipeline import feature_rows, openings, scanned_rows
from features.schemas import Tables
from features.transactions import (
    bucketed,
    category_features,
    customer_index,
    customer_keys,
    flow_table,
    recency_features,
)


def stage_times(tables: Tables, as_of: date, config: FeatureConfig) -> list[dict[str, Any]]:
    """[{stage, seconds, cpu}] for the stages of `build_features(tables, as_of, config)`."""
    out: list[dict[str, Any]] = []

    def timed(name: str, fn: Callable[[], Any]) -> Any:
        start, cpu = time.perf_counter(), time.process_time()
        value = fn()
        out.append(
            {
                "stage": name,
                "seconds": time.perf_counter() - start,
                "cpu": time.process_time() - cpu,
            }
        )
        return value

    ruleset = load_ruleset(config)

    def index_and_keys() -> Any:
        products = product_names(tables.products, config.products)
        profiled = tables.customers.join(profilable_ids(tables), on="customer_id", how="semi")
        index = customer_index(profiled, as_of).collect()
        return products, index, customer_keys(tables.customers, index)

    products, index, customer = timed("customer index and keys", index_and_keys)
    scanned, mapping = timed(
        "scan + categorise (customer join in the scan)",
        lambda: scanned_rows(tables, ruleset, as_of, customer, config, extra=("balance_after",)),
    )
    firsts = timed(
        "opening balances from the first rows (numpy)",
        lambda: first_row_openings(scanned, index.height),
    )
    rows = timed(
        "category join, drop excluded rows", lambda: feature_rows(scanned, mapping, ruleset)
    )
    start = as_of - timedelta(days=config.max_window)
    grid = timed("balance grid (numpy)", lambda: flow_grid(rows, index.height, start, as_of))
    opening = timed(
        "opening balances, tied first instants (2nd scan)",
        lambda: openings(tables, as_of, customer, firsts),
    )
    grid = add_opening(grid, opening)
    balance = timed("balance measures (numpy)", lambda: balance_frame(grid, as_of, config))
    lazy = rows.lazy()
    agg = timed(
        "bucketed group-by",
        lambda: bucketed(lazy, as_of, config.windows, ruleset).collect(engine="streaming"),
    )
    flows = timed("flow pivot (numpy)", lambda: flow_table(agg, config, index.height))
    cats = timed(
        "category pivot (numpy)",
        lambda: category_features(agg, ruleset, config, index.height),
    )
    recency = timed(
        "recency",
        lambda: (
            agg.lazy()
            .group_by("cix")
            .agg(e for _, e in recency_features(ruleset, config, as_of))
            .collect(engine="streaming")
        ),
    )
    income = timed("income", lambda: income_frame(lazy, as_of, config).collect(engine="streaming"))
    large = timed(
        "large inflows",
        lambda: large_inflow_frame(lazy, income.lazy(), as_of, config).collect(engine="streaming"),
    )

    def join_all() -> pl.DataFrame:
        base = customer_base(index.lazy(), as_of).join(
            product_frame(tables.products, as_of, products),
            on="customer_id",
            how="left",
            maintain_order="left",
        )
        for family in (recency, income, large, balance, flows, cats):
            base = base.join(family.lazy(), on="cix", how="left", maintain_order="left")
        return base.collect()

    timed("customers, products and joins", join_all)
    return out
