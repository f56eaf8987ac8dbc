"""The monitoring tables, in the ledger database but under their own MetaData.

They are created next to the ledger's tables (same URL) with `create_all`, and only ever
written by this package: outcomes imported from the channels, and per run the drift, the
challenger's shadow scores and the fairness check.
"""

from __future__ import annotations

import sqlalchemy as sa
from sqlalchemy.engine import Connection, Engine

metadata = sa.MetaData()
outcomes = sa.Table(
    "outcomes",
    metadata,
    sa.Column("outcome_key", sa.String(64), primary_key=True),  # sha256 of the row's fields
    sa.Column("customer_id", sa.String(100), nullable=False, index=True),
    sa.Column("run_id", sa.String(200), nullable=False, index=True),
    sa.Column("campaign_id", sa.String(200), nullable=False),
    sa.Column("channel", sa.String(20), nullable=False),
    sa.Column("outcome", sa.String(20), nullable=False),
    sa.Column("responded_at", sa.DateTime, nullable=False),
    sa.Column("imported_at", sa.DateTime, nullable=False),
)
drift = sa.Table(
    "drift",
    metadata,
    sa.Column("run_id", sa.String(200), nullable=False, index=True),
    sa.Column("product", sa.String(100), nullable=False),
    sa.Column("kind", sa.String(10), nullable=False),  # feature | score
    sa.Column("name", sa.String(200), nullable=False),
    sa.Column("psi", sa.Float, nullable=False),
    sa.Column("level", sa.String(10), nullable=False),  # ok | warn | alert
    sa.Column("model_version", sa.String(100)),
)
shadow_scores = sa.Table(
    "shadow_scores",
    metadata,
    sa.Column("run_id", sa.String(200), nullable=False, index=True),
    sa.Column("customer_id", sa.String(100), nullable=False),
    sa.Column("product", sa.String(100), nullable=False),
    sa.Column("champion_version", sa.String(100), nullable=False),
    sa.Column("challenger_version", sa.String(100), nullable=False),
    sa.Column("champion_score", sa.Float, nullable=False),
    sa.Column("challenger_score", sa.Float, nullable=False),
)
fairness = sa.Table(
    "fairness",
    metadata,
    sa.Column("run_id", sa.String(200), nullable=False, index=True),
    sa.Column("campaign_id", sa.String(200), nullable=False),
    sa.Column("segment", sa.String(100), nullable=False),
    sa.Column("grp", sa.String(100), nullable=False),
    sa.Column("scored", sa.Integer, nullable=False),
    sa.Column("selected", sa.Integer, nullable=False),
    sa.Column("rate", sa.Float, nullable=False),
    sa.Column("ratio", sa.Float),
    sa.Column("warn", sa.Boolean, nullable=False),
)
PER_RUN = (drift, shadow_scores, fairness)


def ensure_tables(engine: Engine | Connection) -> None:
    """Create the monitoring tables if missing (the ledger's own tables are not touched)."""
    metadata.create_all(engine, checkfirst=True)


def clear_run(conn: Connection, run_id: str) -> None:
    """Remove a run's stored checks (they are recomputed as a whole, e.g. after --replace)."""
    for table in PER_RUN:
        conn.execute(sa.delete(table).where(table.c.run_id == run_id))
