"""Access to what the ledger holds about a customer (`propensity explain`)."""

from __future__ import annotations

import logging
from pathlib import Path

import polars as pl
import sqlalchemy as sa

from features.errors import ConfigError
from serving import ledger as lg

log = logging.getLogger(__name__)


def explain_customer(
    customer_id: str, ledger_url: str | None = None, work_dir: Path = Path("propensity-work")
) -> pl.DataFrame:
    """Every decision about a customer, newest run first, with the stored reasons."""
    engine = lg.make_engine(lg.ledger_url(ledger_url, work_dir))
    try:
        if not lg.has_ledger(engine):
            raise ConfigError(f"no ledger at {engine.url} (run `propensity select` first)")
        d, r = lg.decisions, lg.runs
        stmt = (
            sa.select(
                r.c.as_of,
                d.c.run_id,
                d.c.campaign_id,
                d.c.product,
                d.c.channel,
                d.c.outcome,
                d.c.reason,
                d.c.propensity,
                d.c.model_version,
                d.c.reasons,
            )
            .join(r, r.c.run_id == d.c.run_id)
            .where(d.c.customer_id == customer_id)
            .order_by(r.c.created_at.desc(), d.c.campaign_id)
        )
        with engine.connect() as conn:
            result = conn.execute(stmt)
            return pl.DataFrame(
                [tuple(x) for x in result], schema=list(result.keys()), orient="row"
            )
    finally:
        engine.dispose()
