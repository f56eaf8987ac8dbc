"""Access requests (GDPR art. 15): every record the ledger holds about one customer.

That is every decision of every run (with the reasons stored at the time) and every contact:
those the runs made and those imported from the bank's earlier contact history. A customer id
the ledger has never seen is a user mistake (exit 2), told apart from "no decisions".
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import polars as pl
import sqlalchemy as sa

from features.errors import ConfigError
from features.ids import validate_customer_id
from serving import ledger as lg
from serving.ledger_lock import check_reachable, shown_url


@dataclass(frozen=True)
class CustomerRecord:
    customer_id: str
    decisions: pl.DataFrame  # newest run first
    contacts: pl.DataFrame  # newest first; source = run | import


def _frame(conn: sa.Connection, stmt: sa.Select) -> pl.DataFrame:
    result = conn.execute(stmt)
    return pl.DataFrame([tuple(x) for x in result], schema=list(result.keys()), orient="row")


def customer_record(
    customer_id: str, ledger_url: str | None = None, work_dir: Path = Path("propensity-work")
) -> CustomerRecord:
    """Every decision and contact about `customer_id`; ConfigError when none exists."""
    validate_customer_id(customer_id, "CUSTOMER_ID")
    engine = lg.make_engine(lg.ledger_url(ledger_url, work_dir))
    try:
        check_reachable(engine)
        if not lg.has_ledger(engine):
            raise ConfigError(
                f"no ledger at {shown_url(engine.url)} (run `propensity select` first)"
            )
        d, r, c = lg.decisions, lg.runs, lg.contacts
        decisions = (
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
        contacts = (
            sa.select(
                c.c.contacted_at,
                c.c.source,
                c.c.run_id,
                c.c.campaign_id,
                c.c.product,
                c.c.channel,
                c.c.outcome,
            )
            .where(c.c.customer_id == customer_id)
            .order_by(c.c.contacted_at.desc(), c.c.product)
        )
        with lg.ledger_errors(engine), lg.reading(engine) as conn:
            record = CustomerRecord(customer_id, _frame(conn, decisions), _frame(conn, contacts))
    finally:
        engine.dispose()
    if record.decisions.is_empty() and record.contacts.is_empty():
        raise ConfigError(
            f"customer {customer_id!r} is unknown to the ledger: no decision and no contact is "
            "recorded under this id (check the id)"
        )
    return record


def explain_customer(
    customer_id: str, ledger_url: str | None = None, work_dir: Path = Path("propensity-work")
) -> pl.DataFrame:
    """Every decision about a customer, newest run first (see `customer_record` for all)."""
    return customer_record(customer_id, ledger_url, work_dir).decisions
