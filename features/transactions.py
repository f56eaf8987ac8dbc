"""Transaction features: flows, per-category counts and sums, airport/abroad flags, recency.

Two stages keep this fast: one group-by of the narrow categorised rows by (customer, category,
direction, flags, window bucket), then small per-customer aggregates and a pivot of the
customer x category table to columns.
"""

from __future__ import annotations

import logging
from datetime import date

import polars as pl

from features.categories import RuleSet, categorise
from features.config import FeatureConfig
from features.expressions import (
    FeatureInfo,
    age_days,
    days_before,
    feature_name,
    in_window,
    midnight,
    window_bucket,
)

log = logging.getLogger(__name__)

NARROW_COLUMNS = ("cix", "day", "amount", "category", "airport", "abroad")
FLAGS = {"airport": "payments at an airport", "abroad": "payments abroad (country not home)"}
# Group-by keys are packed into one UInt64 (customer index, category code, three flags, window
# bucket): one integer key groups several times faster than six separate columns.
_CIX, _CAT, _FLAG = 2**32, 2**16, 2**8


def customer_index(customers: pl.LazyFrame, before: date) -> pl.LazyFrame:
    """Customers before `before` with a dense UInt32 index `cix` (faster keys than strings)."""
    return (
        customers.filter(pl.col("customer_since") < before)
        .select("customer_id", "birth_date", "customer_since")
        .with_row_index("cix")
    )


def customer_key() -> pl.Expr:
    """A 64-bit hash of `customer_id` as `_cid`: the scan joins on it instead of the string
    (see `customer_keys`)."""
    return pl.col("customer_id").hash(seed=29).alias("_cid")


def customer_keys(customers: pl.LazyFrame, index: pl.DataFrame) -> tuple[pl.Expr, pl.DataFrame]:
    """The key expression for transaction rows and the `_cid` -> `cix` table of the index.
    The hash is used only when no two customers share one (checked over the whole customers
    table, so a booking of a not-yet customer cannot be mistaken for an indexed one);
    otherwise the key is the `customer_id` itself."""
    hashed = customers.select(customer_key(), "customer_id").unique().collect()
    if hashed["_cid"].n_unique() == hashed.height:
        return customer_key(), index.select(customer_key(), "cix")
    plain = pl.col("customer_id").alias("_cid")
    return plain, index.select(plain, "cix")


def booked_before(
    transactions: pl.LazyFrame, before: date, index: pl.LazyFrame | None = None
) -> pl.LazyFrame:
    """Rows booked before `before`; with an index, only indexed customers, with their `cix`."""
    rows = transactions.filter(pl.col("booked_at") < midnight(before))
    if index is None:
        return rows
    return rows.join(index.select("customer_id", "cix"), on="customer_id", how="inner")


def categorised(
    transactions: pl.LazyFrame,
    ruleset: RuleSet,
    before: date,
    index: pl.LazyFrame | None = None,
) -> pl.LazyFrame:
    """Rows booked before `before` with category, airport flag and booking day (narrow: the
    customer key, `day`, `amount`, `country`, `category`, `airport`)."""
    who = "cix" if index is not None else "customer_id"
    rows = booked_before(transactions, before, index).select(
        who, "booked_at", "amount", "country", *ruleset.key_columns
    )
    day = pl.col("booked_at").dt.date().alias("day")
    return categorise(rows, ruleset).select(who, day, "amount", "country", "category", "airport")


def is_special(ruleset: RuleSet) -> pl.Expr:
    return pl.col("category").is_in(sorted(ruleset.special))


def bucketed(
    rows: pl.LazyFrame, as_of: date, windows: tuple[int, ...], ruleset: RuleSet
) -> pl.LazyFrame:
    """Rows before `as_of` grouped by customer, category, direction, flags and window bucket."""
    u64 = pl.UInt64
    flags = (pl.col("amount") > 0).cast(u64) * 4 + pl.col("airport").cast(u64) * 2
    key = (
        pl.col("cix").cast(u64) * _CIX
        + pl.col("category").to_physical().cast(u64) * _CAT
        + (flags + pl.col("abroad").cast(u64)) * _FLAG
        + window_bucket(age_days(as_of), windows).cast(u64)
    )
    codes = list(range(len(ruleset.categories)))
    flag = (pl.col("key") // _FLAG) % 8
    return (
        rows.filter(pl.col("day") < as_of)
        .group_by(key.alias("key"))
        .agg(
            pl.len().cast(pl.Int64).alias("n"),
            pl.col("amount").sum().alias("s"),
            pl.col("amount").max().alias("mx"),
            pl.col("day").min().alias("first"),
            pl.col("day").max().alias("last"),
        )
        .select(
            (pl.col("key") // _CIX).cast(pl.UInt32).alias("cix"),
            ((pl.col("key") // _CAT) % 2**16)
            .replace_strict(codes, list(ruleset.categories), return_dtype=ruleset.dtype)
            .alias("category"),
            (flag // 4 == 1).alias("credit"),
            ((flag // 2) % 2 == 1).alias("airport"),
            (flag % 2 == 1).alias("abroad"),
            (pl.col("key") % _FLAG).cast(pl.UInt8).alias("bucket"),
            "n",
            "s",
            "mx",
            "first",
            "last",
        )
    )


def flow_features(config: FeatureConfig) -> list[tuple[FeatureInfo, pl.Expr]]:
    """Totals per window over the bucketed frame: in/out counts and sums, net, largest inflow."""
    out: list[tuple[FeatureInfo, pl.Expr]] = []
    credit, debit = pl.col("credit"), ~pl.col("credit")
    for j, w in enumerate(config.windows):
        win = in_window(j)
        specs = [
            (
                "inflow",
                "txn_count",
                "number of incoming payments",
                pl.col("n").filter(win & credit).sum(),
                0,
            ),
            ("inflow", "amount_sum", "EUR received", pl.col("s").filter(win & credit).sum(), 0.0),
            (
                "outflow",
                "txn_count",
                "number of outgoing payments",
                pl.col("n").filter(win & debit).sum(),
                0,
            ),
            (
                "outflow",
                "amount_sum",
                "EUR paid out (positive)",
                pl.lit(0.0) - pl.col("s").filter(win & debit).sum(),
                0.0,
            ),
            (
                "net_flow",
                "amount_sum",
                "EUR received minus paid",
                pl.col("s").filter(win).sum(),
                0.0,
            ),
            (
                "inflow",
                "amount_max",
                "largest single incoming payment, EUR",
                pl.col("mx").filter(win & credit).max(),
                None,
            ),
        ]
        for what, measure, meaning, expr, fill in specs:
            name = feature_name(what, measure, w)
            out.append(
                (FeatureInfo(name, f"{meaning} in the last {w} days", w, fill), expr.alias(name))
            )
        for flag, meaning in FLAGS.items():
            sel = win & pl.col(flag)
            for measure, expr, fill in (
                ("txn_count", pl.col("n").filter(sel).sum(), 0),
                ("amount_sum", pl.col("s").filter(sel).sum(), 0.0),
            ):
                name = feature_name(flag, measure, w)
                label = "number of" if measure == "txn_count" else "net EUR of"
                info = FeatureInfo(name, f"{label} {meaning} in the last {w} days", w, fill)
                out.append((info, expr.alias(name)))
    return out


def category_infos(ruleset: RuleSet, config: FeatureConfig) -> list[FeatureInfo]:
    """Count and signed sum per window of every non-special category."""
    infos = []
    for c in ruleset.feature_categories:
        meaning = ruleset.meanings[c]
        for w in config.windows:
            infos.append(
                FeatureInfo(
                    feature_name(c, "txn_count", w),
                    f"number of payments: {meaning}, last {w} days",
                    w,
                    0,
                )
            )
            infos.append(
                FeatureInfo(
                    feature_name(c, "amount_sum", w),
                    f"signed EUR sum (in > 0, out < 0): {meaning}, last {w} days",
                    w,
                    0.0,
                )
            )
    return infos


def category_features(agg: pl.LazyFrame, ruleset: RuleSet, config: FeatureConfig) -> pl.LazyFrame:
    """The customer x category table (every window's count and sum in one group-by), pivoted
    to one column per feature. A pair without rows in a window gets 0 (as the fill would)."""
    cats = list(ruleset.feature_categories)
    measures = []
    for j, w in enumerate(config.windows):
        win = in_window(j)
        measures += [
            pl.when(win).then(pl.col("n")).otherwise(0).sum().alias(f"txn_count_{w}d"),
            pl.when(win).then(pl.col("s")).otherwise(0.0).sum().alias(f"amount_sum_{w}d"),
        ]
    names = [m.meta.output_name() for m in measures]
    long = agg.filter(pl.col("category").is_in(cats)).group_by("cix", "category").agg(measures)
    wide = long.pivot(on="category", on_columns=cats, index="cix", values=names, separator="|")
    return wide.rename({f"{m}|{c}": f"{c}_{m}" for m in names for c in cats})


def recency_features(
    ruleset: RuleSet, config: FeatureConfig, as_of: date
) -> list[tuple[FeatureInfo, pl.Expr]]:
    """Days since the last (or first) event of key kinds, over the bucketed frame; null when
    it never happened before `as_of`."""
    specs: list[tuple[str, str, pl.Expr]] = [("last_txn", "any payment", pl.lit(True))]
    for c in config.recency_categories:
        if c in ruleset.feature_categories:
            specs.append((f"last_{c}", ruleset.meanings[c], pl.col("category") == c))
    for flag, meaning in FLAGS.items():
        specs.append((f"last_{flag}", meaning, pl.col(flag)))
        specs.append((f"first_{flag}", f"{meaning} (first ever)", pl.col(flag)))
    if "child_benefit" in ruleset.feature_categories:
        specs.append(
            (
                "first_child_benefit",
                "child benefit (first ever)",
                pl.col("category") == "child_benefit",
            )
        )
    out = []
    for what, meaning, sel in specs:
        edge = (
            pl.col("first").filter(sel).min()
            if what.startswith("first")
            else pl.col("last").filter(sel).max()
        )
        name = f"days_since_{what}"
        info = FeatureInfo(name, f"days since {what.split('_')[0]}: {meaning}; null if never")
        out.append((info, days_before(as_of, edge).alias(name)))
    return out
