"""`propensity run`: the whole job in order, on the synthetic bank or the user's data.

validate -> features -> train + register -> score -> select (ledger, channel files) -> report.
Each stage is one library call; this module only wires them together and reports progress.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable
from dataclasses import dataclass
from datetime import date, timedelta
from pathlib import Path

import polars as pl

from features.errors import ModelNotFoundError
from features.ids import validate_date, validate_run_id
from features.io import LoadResult, write_rejected
from features.paths import safe_path
from features.schemas import Tables
from models.registry import resolve_tracking_uri
from propensity.compute import open_compute
from propensity.config import AppConfig
from propensity.data import load_data
from propensity.loop import run_checks_for
from propensity.report import write_report
from propensity.reporting import build_report_data
from serving import ledger as ledger_db
from serving.outputs import RunSummary
from serving.pipeline import decide_run, default_run_id
from training.run import read_truth
from training.train import ProductResult, train_products

log = logging.getLogger(__name__)

Step = Callable[[str, float], None]


@dataclass
class JobResult:
    """Where everything went, for the summary the CLI prints."""

    work_dir: Path
    data_dir: Path
    run_id: str
    as_of: date
    tracking_uri: str
    ledger_url: str
    load: LoadResult
    training: dict[str, ProductResult]
    summary: RunSummary
    report: Path


def synthetic_data_dir(config: AppConfig, step: Step) -> Path:
    """Generate the built-in synthetic bank once into the work directory; reuse it after."""
    from synthbank import generate

    syn = config.synthetic
    out = config.work_dir / f"bank-{syn.customers}c-{syn.months}m-seed{syn.seed}"
    marker = out / "_COMPLETE"
    if not marker.exists():
        step(f"generating a synthetic bank of {syn.customers:,} customers", 0.0)
        generate(customers=syn.customers, months=syn.months, seed=syn.seed, out=out, end=syn.end)
        marker.write_text(json.dumps(syn.model_dump(mode="json")))
    return out


def default_as_of(tables: Tables) -> date:
    """The day after the last booked transaction: the first day with nothing yet known."""
    last = tables.transactions.select(pl.col("booked_at").max()).collect().item()
    if last is None:
        return date.today()
    return last.date() + timedelta(days=1)


def write_run_report(
    config: AppConfig,
    summary: RunSummary,
    training: dict[str, ProductResult],
    source: str,
    products: pl.LazyFrame | None = None,
) -> Path:
    """The HTML report of a run (also written by `propensity select`, without training);
    `products` (the run's products table) measures the uplift of earlier runs."""
    data = build_report_data(
        config, summary, training, source=source, notes=summary.notes, products=products
    )
    return write_report(data, safe_path(config.work_dir / "reports", f"{summary.run_id}.html"))


def require_champions(products: list[str], tracking_uri: str) -> None:
    """With `[run] retrain = false` the run scores with the current champions: a product
    without one is skipped later with a note; with none at all there is nothing to score."""
    from models.registry import model_version

    found = []
    for product in products:
        try:
            found.append(model_version(product, "champion", tracking_uri))
        except ModelNotFoundError:
            continue
    if not found:
        raise ModelNotFoundError(
            f"[run] retrain = false (--no-retrain) but no product has a champion model in "
            f"{tracking_uri}: "
            "train first (`propensity run` with [run] retrain = true, or `propensity train`)"
        )


def run_job(config: AppConfig, step: Step) -> JobResult:
    """Run every stage; raises `PropensityError` for bad input, nothing partial is written."""
    work = config.work_dir
    work.mkdir(parents=True, exist_ok=True)
    data_dir = config.data.path or synthetic_data_dir(config, step)
    step("validating the input tables", 0.1)
    load = load_data(data_dir, config)  # with the objection register of the ledger
    write_rejected(load, work / "rejected", data_dir)
    tables = load.tables
    step("opening the MLflow tracking store", 0.12)  # created on first use: seconds
    tracking_uri = resolve_tracking_uri(config.mlflow.tracking_uri, work)
    if config.run.as_of is None:
        step("finding the run date (the last booking)", 0.15)
    as_of = config.run.as_of or default_as_of(tables)
    validate_date(as_of, "--as-of")
    run_id = validate_run_id(config.run.run_id or default_run_id(as_of), "--run-id")
    ledger = ledger_db.ledger_url(config.ledger.url, work)
    ledger_db.refuse_existing_run(ledger, run_id, config.run.replace)
    step("choosing where to compute (local in one go, buckets or Dask)", 0.18)
    dask = config.compute.uses_dask

    def say(choice: str) -> None:  # the log names where the work runs, and why
        step(f"compute: {choice}", 0.19)

    with open_compute(config.compute, data_dir, say) as compute:  # None: local in one go
        training: dict[str, ProductResult] = {}
        if config.run.retrain:
            step("building features and training the models", 0.2)
            training = train_products(
                tables,
                config.training,
                list(config.products),
                work,
                tracking_uri,
                truth=read_truth(data_dir),
                progress=lambda msg, done: step(msg, 0.2 + 0.5 * done),
                promote=config.run.promote,
                feature_config=config.features,
                as_of=as_of,  # time travel: nothing known on or after the run date is trained on
                # fits on the Dask workers; locally (even bucket by bucket) in this process
                backend=compute.backend if compute is not None and dask else None,
            )
        else:
            require_champions([p.name for p in config.products], tracking_uri)
        outcome = decide_run(
            tables, config.engine_config(tracking_uri), as_of=as_of, run_id=run_id,
            replace=config.run.replace, compute=compute, stage=lambda name: step(name, 0.8),
        )  # fmt: skip
    summary = outcome.summary
    if outcome.features is not None and not summary.dry_run:
        step("monitoring checks", 0.9)
        summary.notes += run_checks_for(
            config, tables, outcome.features, outcome.scores, summary, tracking_uri
        )
    step("writing the report", 0.95)
    report = write_run_report(
        config, summary, training, source=str(data_dir), products=tables.products
    )
    step("done", 1.0)
    return JobResult(
        work_dir=work,
        data_dir=data_dir,
        run_id=run_id,
        as_of=as_of,
        tracking_uri=tracking_uri,
        ledger_url=ledger,
        load=load,
        training=training,
        summary=summary,
        report=report,
    )
