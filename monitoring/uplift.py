"""Measured uplift per campaign, per channel and overall, from the ledger and the outcomes.

A treated (`selected`) or `control` customer converted when they opened the offered product
within `attribution_days` after the run date (from the products table, contacted or not), or
when an imported outcome says `accepted` within that window. A run counts as final once its
window has closed by `observed_until` (the first day the data does not cover); younger runs are
provisional and shown only where no final run exists.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from datetime import date, timedelta

import polars as pl
from sqlalchemy.engine import Engine

from monitoring.config import MonitoringConfig
from monitoring.ledger import read_assignments, read_outcomes, read_programme
from monitoring.stats import Uplift, estimate
from serving.reasons import Reason

JSON_KEYS = (
    "treated_n",
    "control_n",
    "treated_rate",
    "control_rate",
    "uplift_abs",
    "uplift_rel",
    "ci_low",
    "ci_high",
    "incremental_value",
    "final",
)


def opened_in_window(pairs: pl.DataFrame, products: pl.LazyFrame) -> pl.DataFrame:
    """`pairs` (customer_id, product, as_of, window_end, ...) with `opened`: the customer opened
    the product on or after as_of and before window_end (the one home of this rule)."""
    keys = pairs.select("customer_id", "product").unique().lazy()
    opened = (
        products.select("customer_id", "product", "opened_at")
        .join(keys, ["customer_id", "product"], "semi")
        .collect()
    )
    hits = (
        pairs.with_row_index("_pair")
        .join(opened, ["customer_id", "product"])
        .filter(
            (pl.col("opened_at") >= pl.col("as_of")) & (pl.col("opened_at") < pl.col("window_end"))
        )
        .select("_pair")
        .unique()
    )
    return (
        pairs.with_row_index("_pair")
        .with_columns(opened=pl.col("_pair").is_in(hits["_pair"].implode()))
        .drop("_pair")
    )


def window_end(as_of: pl.Expr, days: int, observed_until: date) -> pl.Expr:
    """The end (exclusive) of the attribution window, cut at what the data covers."""
    return pl.min_horizontal(as_of + timedelta(days=days), pl.lit(observed_until))


def conversions(
    assignments: pl.DataFrame,
    products: pl.LazyFrame,
    outcomes: pl.DataFrame,
    attribution_days: int,
    observed_until: date,
) -> pl.DataFrame:
    """Assignments with `converted` and `final` (attribution window closed)."""
    a = assignments.with_columns(
        window_end=window_end(pl.col("as_of"), attribution_days, observed_until),
        final=(pl.col("as_of") + timedelta(days=attribution_days)) <= observed_until,
    )
    by_opening = (
        opened_in_window(
            a.select("run_id", "customer_id", "campaign_id", "product", "as_of", "window_end"),
            products,
        )
        .filter(pl.col("opened"))
        .select("run_id", "customer_id", "campaign_id")
    )
    by_outcome = (
        a.select("run_id", "customer_id", "campaign_id", "as_of", "window_end")
        .join(
            outcomes.filter(pl.col("outcome") == "accepted"),
            ["run_id", "customer_id", "campaign_id"],
        )
        .filter(
            (pl.col("responded_at").dt.date() >= pl.col("as_of"))
            & (pl.col("responded_at").dt.date() < pl.col("window_end"))
        )
        .select("run_id", "customer_id", "campaign_id")
    )
    hits = pl.concat([by_opening, by_outcome]).unique().with_columns(converted=pl.lit(True))
    return a.join(hits, ["run_id", "customer_id", "campaign_id"], "left").with_columns(
        pl.col("converted").fill_null(False)
    )


def cells(converted: pl.DataFrame, values: dict[str, float]) -> pl.DataFrame:
    """Treated and control counts per (run, campaign, channel): the strata of every estimate."""
    treated = pl.col("arm") == Reason.SELECTED.value
    control = pl.col("arm") == Reason.CONTROL.value
    value = pl.DataFrame(
        {"campaign_id": list(values), "value": list(values.values())},
        schema={"campaign_id": pl.String(), "value": pl.Float64()},
    )
    return (
        converted.group_by("run_id", "as_of", "campaign_id", "channel", "final")
        .agg(
            n_t=treated.sum(),
            x_t=(treated & pl.col("converted")).sum(),
            n_c=control.sum(),
            x_c=(control & pl.col("converted")).sum(),
        )
        .join(value, "campaign_id", "left")
        .sort("as_of", "run_id", "campaign_id", "channel")
    )


def programme_cells(
    reached: pl.DataFrame, products: pl.LazyFrame, attribution_days: int, observed_until: date
) -> pl.DataFrame:
    """Held-out (global control) vs everyone else who reached the draw, per run: one customer
    counts once per run and converted when they opened any product they were a candidate for
    within the attribution window. The draw is per customer, so the arms are comparable (an
    intention-to-treat estimate of the whole programme, campaign control customers included)."""
    if reached.is_empty():
        return pl.DataFrame(
            schema={"run_id": pl.String(), "n_t": pl.Int64(), "x_t": pl.Int64(),
                    "n_c": pl.Int64(), "x_c": pl.Int64(), "final": pl.Boolean()}
        )  # fmt: skip
    pairs = reached.with_columns(
        window_end=window_end(pl.col("as_of"), attribution_days, observed_until),
        final=(pl.col("as_of") + timedelta(days=attribution_days)) <= observed_until,
    )
    opened = opened_in_window(pairs, products)
    per_customer = opened.group_by("run_id", "customer_id").agg(
        held_out=(pl.col("reason") == Reason.GLOBAL_CONTROL.value).any(),
        converted=pl.col("opened").any(),
        final=pl.col("final").first(),
    )
    held = pl.col("held_out")
    return (
        per_customer.group_by("run_id", "final")
        .agg(
            n_t=(~held).sum().cast(pl.Int64),
            x_t=(~held & pl.col("converted")).sum().cast(pl.Int64),
            n_c=held.sum().cast(pl.Int64),
            x_c=(held & pl.col("converted")).sum().cast(pl.Int64),
        )
        .sort("run_id")
    )


@dataclass(frozen=True)
class UpliftReport:
    """Uplift per campaign, per channel and overall, plus per run (for the trend)."""

    campaigns: dict[str, Uplift] = field(default_factory=dict)
    channels: dict[str, Uplift] = field(default_factory=dict)
    overall: Uplift | None = None
    runs: dict[str, Uplift] = field(default_factory=dict)
    # everyone who reached the global control draw vs the held-out customers (None: no run
    # held a global control group out)
    programme: Uplift | None = None

    def to_json(self) -> dict[str, dict[str, object]]:
        """`{campaign_id: {...}, "overall": {...}}` with exactly JSON_KEYS per entry."""
        out = {c: _keys(u) for c, u in self.campaigns.items()}
        if self.overall is not None:
            out["overall"] = _keys(self.overall)
        if self.programme is not None:
            out["programme"] = _keys(self.programme)
        return out


def _keys(u: Uplift) -> dict[str, object]:
    d = u.as_dict()
    return {k: d[k] for k in JSON_KEYS}


def _pooled(group: pl.DataFrame, config: MonitoringConfig) -> Uplift:
    """Final strata when there are any, else the provisional ones (flagged final=False)."""
    final = group.filter(pl.col("final"))
    use = final if final.height else group
    return estimate(use, final=bool(final.height), confidence=config.confidence, power=config.power)


def summarise(table: pl.DataFrame, config: MonitoringConfig) -> UpliftReport:
    """Estimates from the strata of `cells`."""
    if table.is_empty():
        return UpliftReport()

    def by(column: str) -> dict[str, Uplift]:
        parts = table.partition_by(column, as_dict=True, maintain_order=True)
        return {str(k[0]): _pooled(g, config) for k, g in parts.items()}

    runs = {
        str(k[0]): estimate(
            g, final=bool(g["final"].all()), confidence=config.confidence, power=config.power
        )
        for k, g in table.partition_by("run_id", as_dict=True, maintain_order=True).items()
    }
    return UpliftReport(by("campaign_id"), by("channel"), _pooled(table, config), runs)


def measure(
    engine: Engine,
    products: pl.LazyFrame,
    config: MonitoringConfig,
    observed_until: date,
    values: dict[str, float],
) -> tuple[UpliftReport, pl.DataFrame]:
    """The uplift report and its strata for every run in the ledger."""
    converted = conversions(
        read_assignments(engine),
        products,
        read_outcomes(engine),
        config.attribution_days,
        observed_until,
    )
    table = cells(converted, values)
    report = summarise(table, config)
    programme = programme_cells(
        read_programme(engine), products, config.attribution_days, observed_until
    )
    if not programme.is_empty():
        report = replace(report, programme=_pooled(programme, config))
    return report, table
