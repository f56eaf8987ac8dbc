"""Balance features recomputed without special-category transactions.

`balance_after` includes the effect of special-category payments (a pharmacy, a casino), so it
is not used as such. The balance a feature sees is the account balance before the customer's
first booking (`balance_after - amount` of that row, in (booked_at, transaction_id) order; 0
when `balance_after` is missing) plus the running sum of the non-special amounts: the balance
the account would have had without any special-category payment. For consistent data (every
`balance_after` equal to the previous one plus the amount), adding special-category rows at
any date leaves it unchanged.

The balance is a step function of days: the end-of-day balance holds from a booking day until
the next one. Window measures weight each step by the days it covers inside the window,
counting only days from the customer's first booking on.
"""

from __future__ import annotations

from datetime import date, timedelta

import polars as pl

from features.config import FeatureConfig
from features.expressions import FeatureInfo, epoch_day, feature_name, sum_where

# Days are shifted to be non-negative before packing them into an unsigned key.
_EPOCH_SHIFT = -(2**20)


def opening_expr() -> pl.Expr:
    """Per customer (in a group-by): the balance before the first booking in (booked_at,
    transaction_id) order, `balance_after - amount` of that row (0 when it is missing). One
    streaming aggregation: no sort, no second pass."""
    before = pl.col("balance_after") - pl.col("amount")
    first = before.min_by(pl.struct("booked_at", "transaction_id"))
    return first.fill_null(0.0).alias("opening")


def opening_balances(
    transactions: pl.LazyFrame, index: pl.LazyFrame, on: str = "customer_id"
) -> pl.LazyFrame:
    """Balance before each customer's first booking (see `opening_expr`), from all rows,
    special ones too: this is the account's state before the data starts, not the effect of
    any payment. `on` is the customer key both frames carry (`customer_id`, or the hashed
    key of `customer_keys`)."""
    return (
        transactions.group_by(on)
        .agg(opening_expr())
        .join(index.select(on, "cix"), on=on, how="inner")
        .select("cix", "opening")
    )


def compact_history(rows: pl.LazyFrame, span_start: date) -> pl.LazyFrame:
    """The rows the daily balances need: bookings before `span_start` (which no window
    reaches) become one row per customer on its last such day, carrying their sum, so the
    balance carried into the span is right and the daily step function is shorter."""
    old = pl.col("day") < span_start
    summary = rows.filter(old).group_by("cix").agg(pl.col("day").max(), pl.col("amount").sum())
    recent = rows.filter(~old).select("cix", "day", "amount")
    return pl.concat([summary, recent], how="vertical")


def daily_balances(rows: pl.LazyFrame, opening: pl.LazyFrame) -> pl.LazyFrame:
    """End-of-day balance per customer and booking day, with the next booking day. The key
    (customer index, day) is packed into one UInt64: sorting it first makes the group-by a
    pass over sorted runs (and is cheap when the input is already in customer/time order)."""
    day = pl.col("day").cast(pl.Int32)
    key = pl.col("cix").cast(pl.UInt64) * 2**32 + (day - _EPOCH_SHIFT).cast(pl.UInt64)
    same_next = pl.col("cix").shift(-1) == pl.col("cix")
    return (
        rows.select(key.alias("key"), "amount")
        .sort("key")
        .group_by("key", maintain_order=True)
        .agg(pl.col("amount").sum().alias("net"))
        .select(
            (pl.col("key") // 2**32).cast(pl.UInt32).alias("cix"),
            ((pl.col("key") % 2**32).cast(pl.Int32) + _EPOCH_SHIFT).cast(pl.Date).alias("day"),
            "net",
        )
        .join(opening, on="cix", how="left", maintain_order="left")
        .select(
            "cix",
            "day",
            pl.when(same_next).then(pl.col("day").shift(-1)).alias("next_day"),
            (pl.col("opening").fill_null(0.0) + pl.col("net").cum_sum().over("cix")).alias(
                "balance"
            ),
        )
    )


def balance_infos(config: FeatureConfig) -> list[FeatureInfo]:
    infos = [FeatureInfo("balance_last", "balance at the end of the last booking day, EUR")]
    for w in config.windows:
        infos += [
            FeatureInfo(
                feature_name("balance", "mean", w), f"mean daily balance, last {w} days", w
            ),
            FeatureInfo(
                feature_name("balance", "min", w), f"lowest daily balance, last {w} days", w
            ),
            FeatureInfo(
                feature_name("balance", "days_below_zero", w),
                f"days with a negative balance in the last {w} days",
                w,
                0,
            ),
        ]
    return infos


def overlap_days(start: date, as_of: date) -> pl.Expr:
    """Days of [start, as_of) during which a step's balance held (integer day numbers: Date
    arithmetic through Durations cost several times more on 17M steps)."""
    end = pl.col("next_day").cast(pl.Int32).fill_null(epoch_day(as_of))
    end = pl.min_horizontal(end, pl.lit(epoch_day(as_of), pl.Int32))
    begin = pl.max_horizontal(pl.col("day").cast(pl.Int32), pl.lit(epoch_day(start), pl.Int32))
    return (end - begin).clip(lower_bound=0).cast(pl.Int64)


def balance_frame(daily: pl.LazyFrame, as_of: date, config: FeatureConfig) -> pl.LazyFrame:
    """Per customer balance features as of `as_of` from the daily step function (only the
    steps that overlap the longest window are read)."""
    nxt = pl.col("next_day")
    start = as_of - timedelta(days=config.max_window)
    steps = daily.filter((pl.col("day") < as_of) & (nxt.is_null() | (nxt > start)))
    last = pl.col("balance").filter(nxt.is_null() | (nxt >= as_of)).first()
    exprs = [last.alias("balance_last")]
    cols = []
    for w in config.windows:
        days = overlap_days(as_of - timedelta(days=w), as_of)
        cols.append(days.alias(f"_d{w}"))
        d, bal = pl.col(f"_d{w}"), pl.col("balance")
        exprs += [
            ((bal * d).sum() / d.sum()).alias(feature_name("balance", "mean", w)),
            pl.when(d > 0).then(bal).min().alias(feature_name("balance", "min", w)),
            sum_where(f"_d{w}", bal < 0).alias(feature_name("balance", "days_below_zero", w)),
        ]
    return steps.with_columns(cols).group_by("cix").agg(exprs)
