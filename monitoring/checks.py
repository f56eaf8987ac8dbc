"""`run_checks`: drift, challenger shadow scores and fairness of one run, stored in the ledger DB.

Called by the decision engine after a run is written (the run's rows must be in the ledger).
A product without a drift reference (trained before references existed) or without a distinct
challenger is skipped and named in `notes`.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from datetime import date

import polars as pl
import sqlalchemy as sa

from features.errors import ModelNotFoundError
from monitoring import store
from monitoring.config import MonitoringConfig
from monitoring.drift import compare, level_expr, load_reference
from monitoring.fairness import selection_rates
from monitoring.shadow import shadow_scores
from serving import ledger as lg
from serving.ledger_io import insert_frame

log = logging.getLogger(__name__)


@dataclass
class Checks:
    """What `run_checks` stored for one run."""

    drift: pl.DataFrame
    shadow: pl.DataFrame
    fairness: pl.DataFrame
    notes: list[str] = field(default_factory=list)


def _run_decisions(engine: sa.Engine, run_id: str) -> pl.DataFrame:
    d = lg.decisions.c
    stmt = sa.select(d.customer_id, d.campaign_id, d.product, d.outcome).where(d.run_id == run_id)
    with engine.connect() as conn:
        rows = conn.execute(stmt).all()
    schema = {c: pl.String() for c in ("customer_id", "campaign_id", "product", "outcome")}
    return pl.DataFrame([tuple(r) for r in rows], schema=schema, orient="row")


def drift_rows(
    features: pl.DataFrame,
    scores: pl.DataFrame,
    tracking_uri: str,
    config: MonitoringConfig,
    population: pl.DataFrame | None = None,
) -> tuple[pl.DataFrame, list[str]]:
    """PSI of every feature and the score per product against its champion's reference.

    `population` (customer_id, product) restricts each product to the customers its model was
    trained on (e.g. non-holders): holders would otherwise show as drift."""
    parts, notes = [], []
    for (product,), g in scores.partition_by("product", as_dict=True, maintain_order=True).items():
        ref = load_reference(str(product), "champion", tracking_uri)
        if ref is None:
            notes.append(f"{product}: no drift reference saved with the champion (retrain)")
            continue
        if population is not None:
            g = g.join(
                population.filter(pl.col("product") == product), ["customer_id", "product"], "semi"
            )
        now = features.join(g.select("customer_id", "propensity"), "customer_id")
        psi = compare(ref, now.drop("propensity"), now["propensity"])
        parts.append(
            psi.with_columns(
                product=pl.lit(product),
                level=level_expr("psi", config.psi_warn, config.psi_alert),
                model_version=pl.lit(g["model_version"][0]),
            )
        )
    return (pl.concat(parts) if parts else pl.DataFrame()), notes


def shadow_rows(
    features: pl.DataFrame, scores: pl.DataFrame, decisions: pl.DataFrame, tracking_uri: str
) -> tuple[pl.DataFrame, list[str]]:
    """Challenger scores beside the champion's for the customers the run decided about."""
    from models.registry import load_bundle

    parts, notes = [], []
    for (product,), g in scores.partition_by("product", as_dict=True, maintain_order=True).items():
        try:
            challenger = load_bundle(str(product), "challenger", tracking_uri)
        except ModelNotFoundError:
            continue
        if str(challenger.version) == str(g["model_version"][0]):
            continue  # the newest version is the champion: nothing in shadow
        ids = decisions.filter(pl.col("product") == product)["customer_id"].unique()
        parts.append(shadow_scores(features, g, challenger, ids))
        notes.append(f"{product}: challenger version {challenger.version} scored in shadow")
    return (pl.concat(parts) if parts else pl.DataFrame()), notes


def run_checks(
    *,
    ledger_url: str,
    run_id: str,
    as_of: date,
    features: pl.DataFrame,
    scores: pl.DataFrame,
    customers: pl.DataFrame,
    tracking_uri: str,
    config: MonitoringConfig,
    population: pl.DataFrame | None = None,
) -> Checks:
    """Compute and store drift, shadow scores and fairness for `run_id` (replacing old rows).

    features: the run's feature frame (customer_id + model features); scores: the champions'
    long scores (customer_id, product, propensity, model_version); customers: customer_id and
    birth_date (age bands); population: customer_id, product of each model's population on
    the run date (see `drift_rows`).
    """
    engine = lg.make_engine(ledger_url)
    try:
        decisions = _run_decisions(engine, run_id)
        drift, notes = drift_rows(features, scores, tracking_uri, config, population)
        shadow, more = (
            shadow_rows(features, scores, decisions, tracking_uri)
            if config.shadow
            else (pl.DataFrame(), [])
        )
        fair = selection_rates(decisions, scores, customers, as_of, config, features)
        with lg.locked(engine) as conn:
            store.ensure_tables(conn)
            store.clear_run(conn, run_id)
            for table, frame in (
                (store.drift, drift),
                (store.shadow_scores, shadow),
                (store.fairness, fair),
            ):
                if frame.height:
                    cols = [c.name for c in table.columns if c.name != "run_id"]
                    insert_frame(
                        conn, table, frame.select(cols).with_columns(run_id=pl.lit(run_id))
                    )
    finally:
        engine.dispose()
    for note in notes + more:
        log.info(note)
    return Checks(drift, shadow, fair, notes + more)
