"""Reading runs, the treated and control decisions, and imported outcomes from the ledger."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import polars as pl
import sqlalchemy as sa
from sqlalchemy.engine import Engine

from monitoring import store
from serving import ledger as lg
from serving.reasons import LEGACY_CODES, REACHED_GLOBAL_CONTROL, Reason, normalise_expr

RUN_SCHEMA = {
    "run_id": pl.String(),
    "as_of": pl.Date(),
    "created_at": pl.Datetime("us"),
    "summary": pl.String(),
}
ASSIGNMENT_SCHEMA = {
    "run_id": pl.String(),
    "as_of": pl.Date(),
    "customer_id": pl.String(),
    "campaign_id": pl.String(),
    "product": pl.String(),
    "channel": pl.String(),
    "arm": pl.String(),  # selected (treated) | control
    "propensity": pl.Float64(),
    "model_version": pl.String(),
}
PROGRAMME_SCHEMA = {
    "run_id": pl.String(),
    "as_of": pl.Date(),
    "customer_id": pl.String(),
    "product": pl.String(),
    "reason": pl.String(),
}
OUTCOME_SCHEMA = {
    "customer_id": pl.String(),
    "run_id": pl.String(),
    "campaign_id": pl.String(),
    "channel": pl.String(),
    "outcome": pl.String(),
    "responded_at": pl.Datetime("us"),
}
ARMS = (Reason.SELECTED.value, Reason.CONTROL.value)


def _frame(rows: Sequence[Any], schema: dict[str, pl.DataType]) -> pl.DataFrame:
    return pl.DataFrame([tuple(r) for r in rows], schema=schema, orient="row")


def read_runs(engine: Engine) -> pl.DataFrame:
    """Every complete run, oldest first."""
    if not lg.has_ledger(engine):
        return pl.DataFrame(schema=RUN_SCHEMA)
    r = lg.runs.c
    stmt = sa.select(r.run_id, r.as_of, r.created_at, r.summary).where(r.status == "complete")
    with engine.connect() as conn:
        rows = conn.execute(stmt.order_by(r.as_of, r.created_at)).all()
    return _frame(rows, RUN_SCHEMA)


def read_assignments(engine: Engine, run_ids: Sequence[str] | None = None) -> pl.DataFrame:
    """Treated (`selected`) and `control` decisions with their run date."""
    if not lg.has_ledger(engine):
        return pl.DataFrame(schema=ASSIGNMENT_SCHEMA)
    d, r = lg.decisions.c, lg.runs.c
    stmt = (
        sa.select(
            d.run_id,
            r.as_of,
            d.customer_id,
            d.campaign_id,
            d.product,
            d.channel,
            d.outcome,
            d.propensity,
            d.model_version,
        )
        .join(lg.runs, r.run_id == d.run_id)
        .where(d.outcome.in_(ARMS))
    )
    if run_ids is not None:
        stmt = stmt.where(d.run_id.in_(list(run_ids)))
    with engine.connect() as conn:
        rows = conn.execute(stmt).all()
    return _frame(rows, ASSIGNMENT_SCHEMA)


def read_programme(engine: Engine) -> pl.DataFrame:
    """Every decision of a candidate who reached the global control draw (`reason` in
    `REACHED_GLOBAL_CONTROL`) in the runs that held a global control group out, with its run
    date: the population of the programme uplift."""
    if not lg.has_ledger(engine):
        return pl.DataFrame(schema=PROGRAMME_SCHEMA)
    d, r = lg.decisions.c, lg.runs.c
    codes = [
        *REACHED_GLOBAL_CONTROL,
        *(k for k, v in LEGACY_CODES.items() if v in REACHED_GLOBAL_CONTROL),
    ]
    held_out = sa.select(d.run_id).where(d.reason == Reason.GLOBAL_CONTROL.value).distinct()
    stmt = (
        sa.select(d.run_id, r.as_of, d.customer_id, d.product, d.reason)
        .join(lg.runs, r.run_id == d.run_id)
        .where(r.status == "complete", d.reason.in_(codes), d.run_id.in_(held_out))
    )
    with engine.connect() as conn:
        rows = conn.execute(stmt).all()
    return _frame(rows, PROGRAMME_SCHEMA).with_columns(normalise_expr("reason"))


def read_outcomes(engine: Engine) -> pl.DataFrame:
    """Outcomes imported with `propensity outcomes import`."""
    if not sa.inspect(engine).has_table(store.outcomes.name):
        return pl.DataFrame(schema=OUTCOME_SCHEMA)
    o = store.outcomes.c
    with engine.connect() as conn:
        rows = conn.execute(sa.select(*(o[c] for c in OUTCOME_SCHEMA))).all()
    return _frame(rows, OUTCOME_SCHEMA)


def read_table(engine: Engine, table: sa.Table, run_ids: Sequence[str]) -> pl.DataFrame:
    """Stored per-run check rows (drift, shadow scores, fairness) of the given runs."""
    if not sa.inspect(engine).has_table(table.name):
        return pl.DataFrame()
    with engine.connect() as conn:
        result = conn.execute(sa.select(table).where(table.c.run_id.in_(list(run_ids))))
        rows, names = result.all(), list(result.keys())
    if not rows:
        return pl.DataFrame(schema=names)
    return pl.DataFrame([tuple(r) for r in rows], schema=names, orient="row")
