"""Wiring of the closed loop for the CLI and `propensity run`: uplift from a data directory,
the trend over recent runs, and the checks stored after a run (`monitoring.run_checks`)."""

from __future__ import annotations

from datetime import date
from pathlib import Path

import polars as pl
from sqlalchemy.engine import Engine

from features.schemas import Tables
from monitoring.uplift import UpliftReport
from propensity.config import AppConfig
from serving.outputs import RunSummary


def _observed(config: AppConfig, data: Path | None) -> tuple[pl.LazyFrame, date]:
    """The products table and the first day the data does not cover (today without data)."""
    from features.io import load_tables
    from features.schemas import PRODUCTS, empty_frame
    from propensity.job import default_as_of

    data_dir = data or config.data.path
    if data_dir is None:
        return empty_frame(PRODUCTS), date.today()
    tables = load_tables(data_dir, options=config.data).tables
    return tables.products, default_as_of(tables)


def measure_uplift(
    config: AppConfig, data: Path | None, ledger_url: str
) -> tuple[UpliftReport, pl.DataFrame]:
    """Uplift of every run in the ledger, conversions from `data` and the imported outcomes."""
    from monitoring.uplift import measure
    from serving.ledger import make_engine

    products, observed = _observed(config, data)
    values = {c.id: c.value for c in config.campaigns}
    engine = make_engine(ledger_url)
    try:
        return measure(engine, products, config.monitoring, observed, values)
    finally:
        engine.dispose()


def trend(config: AppConfig, data: Path | None, ledger_url: str, last: int) -> pl.DataFrame:
    """`propensity report --runs N`: the trend over the last N runs of the ledger."""
    from serving.ledger import make_engine

    report, cells = measure_uplift(config, data, ledger_url)
    engine = make_engine(ledger_url)
    try:
        return trend_frame(engine, report, cells, last)
    finally:
        engine.dispose()


def trend_frame(
    engine: Engine, report: UpliftReport, cells: pl.DataFrame, last: int
) -> pl.DataFrame:
    """One row per recent run: contacts, control, conversions, uplift with interval, drift."""
    from monitoring import store
    from monitoring.ledger import read_runs, read_table

    runs = read_runs(engine).tail(last)
    drift = read_table(engine, store.drift, runs["run_id"].to_list())
    counts = cells.group_by("run_id").agg(
        pl.col("n_t").sum().alias("contacts"),
        pl.col("n_c").sum().alias("control"),
        pl.col("x_t").sum().alias("conversions"),
    )
    psi = (
        drift.group_by("run_id").agg(
            max_feature_psi=pl.col("psi").filter(pl.col("kind") == "feature").max(),
            max_score_psi=pl.col("psi").filter(pl.col("kind") == "score").max(),
            drift_alerts=(pl.col("level") == "alert").sum(),
        )
        if drift.height
        else pl.DataFrame(schema={"run_id": pl.String()})
    )
    up = pl.DataFrame(
        [
            {
                "run_id": r,
                "uplift": u.uplift_rel,
                "ci_low": u.ci_low,
                "ci_high": u.ci_high,
                "final": u.final,
            }
            for r, u in report.runs.items()
        ],
        schema={
            "run_id": pl.String(),
            "uplift": pl.Float64(),
            "ci_low": pl.Float64(),
            "ci_high": pl.Float64(),
            "final": pl.Boolean(),
        },
    )
    return (
        runs.select("run_id", "as_of")
        .join(counts, "run_id", "left")
        .join(up, "run_id", "left")
        .join(psi, "run_id", "left")
    )


def run_checks_for(
    config: AppConfig,
    tables: Tables,
    features: pl.DataFrame,
    scores: pl.DataFrame,
    summary: RunSummary,
    tracking_uri: str,
) -> list[str]:
    """Drift (on each model's population: adults without the product, as in training),
    challenger shadow scores and fairness of a written run, stored beside the ledger."""
    from models.products import resolve_products
    from monitoring import run_checks
    from serving.ledger import ledger_url
    from training.labels import build_labels

    specs = resolve_products(config.products, scores["product"].unique().sort().to_list())
    population = (
        pl.concat(
            build_labels(tables, s, [summary.as_of], 1).select(
                "customer_id", product=pl.lit(s.name)
            )
            for s in specs
        ).collect()
        if specs
        else None
    )
    return run_checks(
        ledger_url=ledger_url(config.ledger.url, config.work_dir),
        run_id=summary.run_id,
        as_of=summary.as_of,
        features=features,
        scores=scores,
        customers=tables.customers.select("customer_id", "birth_date").collect(),
        tracking_uri=tracking_uri,
        config=config.monitoring,
        population=population,
    ).notes
