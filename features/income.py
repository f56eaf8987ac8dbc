"""Income and life-event features: salary detection and change, income level, large inflows.

Income is salary, pension and benefits. A large inflow is any other incoming payment of at
least `large_inflow_absolute` EUR, or of at least `large_inflow_income_multiple` months of the
customer's own income as of `as_of` (and at least `large_inflow_min_amount`).
"""

from __future__ import annotations

from datetime import date

import polars as pl

from features.config import FeatureConfig
from features.expressions import FeatureInfo, age_days

INCOME = ("salary", "pension", "benefits")
NOT_LARGE = (*INCOME, "child_benefit")


def _month(col: str = "day") -> pl.Expr:
    return pl.col(col).dt.year() * 12 + pl.col(col).dt.month()


def income_features(config: FeatureConfig) -> list[tuple[FeatureInfo, pl.Expr]]:
    """Expressions over a customer's income rows carrying `age` (days before as_of)."""
    age, amount = pl.col("age"), pl.col("amount")
    sal = (pl.col("category") == "salary") & (age < 365)
    recent, prior = sal & (age < 90), sal & (age >= 90) & (age < 180)
    income = age < 365
    ratio = amount.filter(recent).mean() / amount.filter(prior).mean() - 1
    months = _month().filter(sal).n_unique()
    specs: list[tuple[str, str, pl.Expr, object]] = [
        (
            "salary_detected",
            "salary received in at least 2 calendar months of the last 90 days",
            _month().filter(recent).n_unique() >= 2,
            False,
        ),
        (
            "salary_months_count_365d",
            "calendar months with a salary in the last 365 days",
            months,
            0,
        ),
        (
            "salary_monthly_amount",
            "salary per month received, EUR (last 365 days)",
            pl.when(months > 0).then(amount.filter(sal).sum() / months),
            None,
        ),
        (
            "salary_amount_mean_90d",
            "mean salary payment in the last 90 days, EUR",
            amount.filter(recent).mean(),
            None,
        ),
        (
            "salary_change_ratio_90d",
            "mean salary payment of the last 90 days against the 90 days before, minus 1",
            ratio,
            None,
        ),
        (
            "salary_increase_90d",
            f"salary up by at least {config.salary_increase_ratio:.0%} "
            "(last 90 days against the 90 before)",
            (ratio >= config.salary_increase_ratio).fill_null(False),
            False,
        ),
        (
            "income_monthly_amount",
            "salary, pension and benefits per month received, EUR (last 365 days)",
            amount.filter(income).sum() / _month().filter(income).n_unique(),
            None,
        ),
        (
            "pension_received_90d",
            "a pension payment in the last 90 days",
            ((pl.col("category") == "pension") & (age < 90)).any(),
            False,
        ),
        (
            "benefits_received_90d",
            "a benefit payment in the last 90 days",
            ((pl.col("category") == "benefits") & (age < 90)).any(),
            False,
        ),
    ]
    window = {
        "salary_months_count_365d": 365,
        "salary_amount_mean_90d": 90,
        "salary_change_ratio_90d": 90,
        "salary_increase_90d": 90,
        "pension_received_90d": 90,
        "benefits_received_90d": 90,
    }
    return [(FeatureInfo(n, m, window.get(n), f), e.alias(n)) for n, m, e, f in specs]  # type: ignore[arg-type]


def income_frame(rows: pl.LazyFrame, as_of: date, config: FeatureConfig) -> pl.LazyFrame:
    """Per customer income features from the narrow rows (income rows of the last year)."""
    return (
        rows.filter(pl.col("category").is_in(INCOME) & (pl.col("day") < as_of))
        .with_columns(age_days(as_of))
        .filter(pl.col("age") < 365)
        .group_by("cix")
        .agg(e for _, e in income_features(config))
    )


def large_inflow_features(config: FeatureConfig) -> list[tuple[FeatureInfo, pl.Expr]]:
    """Expressions over a customer's candidate inflows carrying `age` and `large`."""
    d = config.large_inflow_days
    big = pl.col("large") & (pl.col("age") < d)
    top = pl.col("amount").filter(big).max()
    specs: list[tuple[str, str, int | None, pl.Expr]] = [
        (
            f"large_inflow_amount_max_{d}d",
            f"largest large inflow in the last {d} days, EUR",
            d,
            top,
        ),
        (
            f"large_inflow_income_ratio_{d}d",
            f"largest large inflow of the last {d} days in months of income",
            d,
            top / pl.col("income_monthly_amount").first(),
        ),
        (
            "days_since_last_large_inflow",
            "days since the last large inflow; null if never",
            None,
            pl.col("age").min(),
        ),
    ]
    return [(FeatureInfo(n, m, w), e.alias(n)) for n, m, w, e in specs]


def large_inflow_frame(
    rows: pl.LazyFrame, income: pl.LazyFrame, as_of: date, config: FeatureConfig
) -> pl.LazyFrame:
    """Per customer large-inflow features; the income rule uses income as of `as_of`."""
    floor = min(config.large_inflow_min_amount, config.large_inflow_absolute)
    monthly = pl.col("income_monthly_amount")
    relative = (pl.col("amount") >= config.large_inflow_income_multiple * monthly) & (
        pl.col("amount") >= config.large_inflow_min_amount
    )
    large = (pl.col("amount") >= config.large_inflow_absolute) | relative.fill_null(False)
    return (
        rows.filter(
            (pl.col("day") < as_of)
            & (pl.col("amount") >= floor)
            & ~pl.col("category").is_in(NOT_LARGE)
        )
        .join(income.select("cix", "income_monthly_amount"), on="cix", how="left")
        .with_columns(age_days(as_of), large.alias("large"))
        .filter(pl.col("large"))
        .group_by("cix")
        .agg(e for _, e in large_inflow_features(config))
    )
