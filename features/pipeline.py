"""Customer features as of a date: the one entry point training and serving call.

Order of work: categorise the transactions booked before `as_of` (rules evaluated once per
distinct counterparty combination), drop special-category rows and the eligibility-only
families (debt collection, gambling: they reach only `features.distress`), then compute each
feature family from the remaining rows and join the families onto the customers of that date.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import date, timedelta

import polars as pl
import polars.selectors as cs

from features.balance import (
    BalanceGrid,
    FirstRows,
    add_opening,
    balance_frame,
    balance_infos,
    first_row_openings,
    flow_grid,
    opening_balances,
)
from features.categories import RuleSet, load_ruleset, scan_categorised
from features.config import FeatureConfig
from features.consent import profilable_ids
from features.customers import customer_base, customer_infos, product_frame, product_names
from features.expressions import FeatureInfo, abroad_expr
from features.hashing import bucket_expr
from features.income import income_features, income_frame, large_inflow_features, large_inflow_frame
from features.life_events import life_event_features
from features.schemas import SPECS, Tables
from features.transactions import (
    NARROW_COLUMNS,
    booked_before,
    bucketed,
    categorised,
    category_features,
    category_infos,
    customer_index,
    customer_keys,
    flow_infos,
    flow_table,
    is_excluded,
    is_special,
    recency_features,
)

log = logging.getLogger(__name__)

FLOAT_DECIMALS = 6
ANY_DATE = date(2000, 1, 1)  # recency expressions need a date; their names do not depend on it


def feature_infos(
    config: FeatureConfig, ruleset: RuleSet, products: tuple[str, ...]
) -> list[FeatureInfo]:
    """Every feature column in output order (after `customer_id` and `as_of`)."""
    return [
        *customer_infos(products),
        *flow_infos(config),
        *category_infos(ruleset, config),
        *(i for i, _ in recency_features(ruleset, config, ANY_DATE)),
        *balance_infos(config),
        *(i for i, _ in income_features(config)),
        *(i for i, _ in large_inflow_features(config)),
        *(i for i, _ in life_event_features(ruleset, config)),
    ]


def _features_from_rows(
    prepared: Prepared, tables: Tables, as_of: date, config: FeatureConfig
) -> pl.LazyFrame:
    """All families for one date from the prepared (categorised, non-special) rows. The
    bucketed aggregate feeds the flow totals, the customer x category table and recency,
    and income feeds the large inflows, so each is computed once. The polars families are
    collected one after the other (one streaming plan running all of them at once was 15%
    slower on 2 cores); the numpy families run on one thread beside them (the balance beside
    the bucketed group-by, the two pivots beside recency and income). The small
    per-customer results are then joined in index order."""
    ruleset, rows, products = prepared.ruleset, prepared.rows.lazy(), prepared.products
    customers = prepared.index.height
    with ThreadPoolExecutor(max_workers=1) as numpy_thread:
        balance = numpy_thread.submit(balance_frame, prepared.grid, as_of, config)
        agg = bucketed(rows, as_of, config.windows, ruleset).collect(engine="streaming")
        flows = numpy_thread.submit(flow_table, agg, config, customers)
        cats = numpy_thread.submit(category_features, agg, ruleset, config, customers)
        recency = (
            agg.lazy().group_by("cix").agg(e for _, e in recency_features(ruleset, config, as_of))
        )
        income = income_frame(rows, as_of, config).collect(engine="streaming")
        large = large_inflow_frame(rows, income.lazy(), as_of, config)
        families = [recency.collect(engine="streaming"), income, large.collect(engine="streaming")]
        families += [balance.result(), flows.result(), cats.result()]
    out = customer_base(prepared.index.lazy(), as_of).join(
        product_frame(tables.products, as_of, products),
        on="customer_id",
        how="left",
        maintain_order="left",
    )
    for family in families:  # in index (customer_id) order: no sort of the wide result
        out = out.join(family.lazy(), on="cix", how="left", maintain_order="left")
    infos = feature_infos(config, ruleset, products)
    fills = [pl.col(i.name).fill_null(i.fill) for i in infos if i.fill is not None]
    out = out.with_columns(e for _, e in life_event_features(ruleset, config)).with_columns(fills)
    # Parallel sums add in a varying order (last-bit differences); 6 decimals make the same
    # data give the same bits, so training and decisions are reproducible (issues 12, 13).
    out = out.with_columns(cs.float().round(FLOAT_DECIMALS))
    return out.select("customer_id", "as_of", *(i.name for i in infos))


@dataclass(frozen=True)
class Prepared:
    """What every date needs, in memory: the rules, the customer index, the categorised
    non-special rows and the balance of every customer and day of the span."""

    ruleset: RuleSet
    products: tuple[str, ...]
    index: pl.DataFrame
    rows: pl.DataFrame
    grid: BalanceGrid


@dataclass(frozen=True)
class Scanned:
    """What `prepare` read, while it still holds it: every row of the indexed customers booked
    before `before`, special ones too (`cix`, `booked_at`, `amount`, `abroad`, `_rule_key`),
    the mapping `_rule_key` -> `category`, `airport`, each customer's opening balance (`cix`,
    `opening`) and the customer index. Per-customer checks that are not features (the
    responsible-lending flags, the eligibility facts) read these instead of scanning and
    categorising the transactions again; nothing here is joined to a feature."""

    before: date
    rows: pl.DataFrame
    mapping: pl.DataFrame
    opening: pl.DataFrame
    index: pl.DataFrame


OnScan = Callable[[Scanned], None]


def scanned_rows(
    tables: Tables,
    ruleset: RuleSet,
    before: date,
    customer: tuple[pl.Expr, pl.DataFrame],
    config: FeatureConfig,
    since: date | None = None,
    extra: tuple[str, ...] = (),
) -> tuple[pl.DataFrame, pl.DataFrame]:
    """Every row of an indexed customer booked before `before` (and on or after `since`, if
    given), special ones too: `cix`, `booked_at`, `amount`, `abroad`, the `extra` columns
    and `_rule_key`, and the mapping `_rule_key` -> category (see `scan_categorised`), from
    one streaming scan that never keeps text in memory. Rows join their customer index
    inside the scan, on an integer key (a hash, see `customer_keys`), so rows of other
    customers are dropped at once."""
    key, keys = customer
    abroad = abroad_expr(config.home_country)
    booked = booked_before(tables.transactions, before, since=since)
    booked = booked.with_columns(key, abroad.alias("abroad")).join(keys.lazy(), on="_cid")
    keep = ["cix", "booked_at", "amount", "abroad", *extra]
    return scan_categorised(booked, ruleset, keep)


def feature_rows(scanned: pl.DataFrame, mapping: pl.DataFrame, ruleset: RuleSet) -> pl.DataFrame:
    """The narrow rows (`NARROW_COLUMNS`) of `scanned_rows`: category and airport flag joined
    on the integer rule key, without special and eligibility-only rows (`is_excluded`)."""
    day = pl.col("booked_at").dt.date().alias("day")
    return (
        scanned.lazy()
        .join(mapping.filter(~is_excluded(ruleset)).lazy(), on="_rule_key")
        .with_columns(day)
        .select(NARROW_COLUMNS)
        .collect(engine="streaming")
    )


def narrow_rows(
    tables: Tables,
    ruleset: RuleSet,
    before: date,
    customer: tuple[pl.Expr, pl.DataFrame],
    config: FeatureConfig,
    since: date | None = None,
) -> pl.DataFrame:
    """The narrow rows (`NARROW_COLUMNS`) booked before `before` (and on or after `since`, if
    given), without special and eligibility-only rows: `feature_rows` of `scanned_rows`.
    `customer` is `customer_keys(...)` of the index."""
    scanned, mapping = scanned_rows(tables, ruleset, before, customer, config, since)
    return feature_rows(scanned, mapping, ruleset)


def opening_frame(
    tables: Tables,
    before: date,
    customer: tuple[pl.Expr, pl.DataFrame],
    firsts: pl.Series | None = None,
) -> pl.LazyFrame:
    """`cix`, `opening`: each indexed customer's balance before the first booking (all rows
    booked before `before`, special ones too; see `opening_expr`). `customer` is
    `customer_keys(...)` of the index. `firsts`, if given, holds every indexed customer's
    first booking time (any superset will do): only rows booked at one of those instants
    can be a first row, so the scan filters on them and the Parquet reader decodes the other
    columns of those rows only (the tie-break by `transaction_id` then runs on a few rows)."""
    key, keys = customer
    rows = booked_before(tables.transactions, before)
    if firsts is not None:
        rows = rows.filter(pl.col("booked_at").is_in(firsts.implode()))
    rows = rows.select(key, "booked_at", "transaction_id", "amount", "balance_after")
    return opening_balances(rows, keys.lazy(), on="_cid")


def openings(
    tables: Tables, before: date, customer: tuple[pl.Expr, pl.DataFrame], firsts: FirstRows
) -> pl.DataFrame:
    """`cix`, `opening` of every customer with a booking before `before`: from the scanned
    rows (`first_row_openings`) where one row holds the customer's first instant; a second,
    filtered scan (`opening_frame`, the `transaction_id` tie-break) only for the customers
    whose first instant several rows share (none in data with booking times, every customer
    in data booked by date alone)."""
    if not firsts.tied.size:
        return firsts.opening
    tied = opening_frame(tables, before, customer, firsts.instants).collect(engine="streaming")
    tied = tied.filter(pl.col("cix").is_in(pl.Series(firsts.tied).implode()))
    return pl.concat([firsts.opening, tied.cast(firsts.opening.schema)])


def prepare(
    tables: Tables,
    before: date,
    config: FeatureConfig,
    first: date | None = None,
    on_scan: OnScan | None = None,
) -> Prepared:
    """Scan and categorise once (rules per distinct counterparty combination), drop special
    and eligibility-only rows, index only the customers who may be profiled (`profilable_ids`:
    no objector and no customer without a consent row, whatever tables the caller passed),
    derive the balance of every day from `first` to `before`; kept in memory because every
    family and every date reads them (a narrow frame: about 20 bytes per transaction).
    `on_scan`, if given, is called with the scanned rows (`Scanned`) beside the balance grid,
    before they are dropped."""
    ruleset = load_ruleset(config)
    products = product_names(tables.products, config.products)
    profiled = tables.customers.join(profilable_ids(tables), on="customer_id", how="semi")
    index = customer_index(profiled, before).collect()
    customer = customer_keys(tables.customers, index)
    extra = ("balance_after",)
    scanned, mapping = scanned_rows(tables, ruleset, before, customer, config, extra=extra)
    firsts = first_row_openings(scanned, index.height)
    rows = feature_rows(scanned, mapping, ruleset)
    span_start = (first or before) - timedelta(days=config.max_window)
    with ThreadPoolExecutor(max_workers=1) as numpy_thread:  # one numpy thread beside polars
        grid_job = numpy_thread.submit(flow_grid, rows, index.height, span_start, before)
        opening = openings(tables, before, customer, firsts)
        if on_scan is not None:
            on_scan(Scanned(before, scanned, mapping, opening, index))
        del scanned
        grid = add_opening(grid_job.result(), opening)
    log.info("categorised %d feature transactions before %s", rows.height, before)
    return Prepared(ruleset, products, index, rows, grid)


def build_features(
    tables: Tables, as_of: date, config: FeatureConfig, on_scan: OnScan | None = None
) -> pl.LazyFrame:
    """One row per customer with `customer_since < as_of` who may be profiled (a consent row
    without objection, see `features.consent`): `customer_id`, `as_of`, then the
    features of `feature_infos`, from transactions booked and products opened before `as_of`.
    The scan and the large aggregations run here (streaming engine); the returned LazyFrame
    only joins the per-customer families. `on_scan`: see `prepare`."""
    prepared = prepare(tables, as_of, config, on_scan=on_scan)
    return _features_from_rows(prepared, tables, as_of, config)


def build_features_many(
    tables: Tables, as_of_dates: list[date], config: FeatureConfig
) -> pl.LazyFrame:
    """One row per customer and date (same columns as `build_features`). The transactions are
    scanned and categorised once (up to the last date); every date then aggregates from the
    narrow rows in memory, one date at a time, so memory stays bounded by one date's work plus
    the output."""
    if not as_of_dates:
        return build_features(tables, ANY_DATE, config).clear()
    dates = sorted(set(as_of_dates))
    prepared = prepare(tables, dates[-1], config, first=dates[0])
    frames = [
        _features_from_rows(prepared, tables, d, config).collect(engine="streaming") for d in dates
    ]
    return pl.concat(frames).lazy()  # dates ascending, customers in order within each


def excluded_counts(tables: Tables, as_of: date, config: FeatureConfig) -> dict[str, int]:
    """How many transactions booked before `as_of` are dropped before any feature:
    `special` (art. 9 data) and `eligibility_only` (e.g. debt collection, not special)."""
    ruleset = load_ruleset(config)
    rows = categorised(tables.transactions, ruleset, as_of).filter(is_excluded(ruleset))
    counts = rows.select(
        special=is_special(ruleset).sum(), eligibility_only=(~is_special(ruleset)).sum()
    ).collect(engine="streaming")
    out = {k: int(v) for k, v in counts.row(0, named=True).items()}
    log.info("dropped %s transactions before %s", out, as_of)
    return out


def special_count(tables: Tables, as_of: date, config: FeatureConfig) -> int:
    """How many transactions booked before `as_of` are special-category (and so dropped)."""
    return excluded_counts(tables, as_of, config)["special"]


def partition(tables: Tables, n: int, i: int) -> Tables:
    """The rows of the customers in hash partition `i` of `n` (every table), by the project's
    stable hash (`features.hashing.bucket_of`): the same customers on every machine and
    library version."""
    if n < 1 or not 0 <= i < n:
        raise ValueError(f"partition {i} of {n} does not exist")
    keep = bucket_expr("customer_id", n) == i
    frames = {name: getattr(tables, name).filter(keep) for name in SPECS}
    return tables.with_(**frames)
