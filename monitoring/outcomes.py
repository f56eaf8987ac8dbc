"""`propensity outcomes import FILE`: responses from the channels, checked like a contract table.

The file (Parquet or CSV) has customer_id, campaign_id or run_id (one at least), channel,
outcome (accepted, declined, no_response) and responded_at. Table-level faults (missing
column, uncastable value) stop the import with exit 2; row-level faults are quarantined to
`<rejected_out>/outcomes.rejected.parquet`: nulls, an unknown channel or outcome, a response in
the future, and a row that matches no treated decision in the ledger. A row given only a
campaign_id belongs to that customer's latest run of the campaign on or before the response.
Each row is stored once under a hash of its fields, so importing a file again changes nothing.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from datetime import date, datetime
from pathlib import Path

import polars as pl
import sqlalchemy as sa
from sqlalchemy.engine import Engine

from features.errors import ContractError, Fault
from features.io import scan_table
from features.schemas import CHANNELS, DATETIME, OUTCOMES, Column, TableSpec
from features.validate import RowContext, RowRule, cast_to_contract
from monitoring import store
from monitoring.ledger import read_assignments
from serving import ledger as lg
from serving.ledger_io import insert_frame
from serving.reasons import Reason

OUTCOMES_SPEC = TableSpec(
    "outcomes",
    (
        Column("customer_id", pl.String()),
        Column("campaign_id", pl.String(), required=False),
        Column("run_id", pl.String(), required=False),
        Column("channel", pl.String()),
        Column("outcome", pl.String()),
        Column("responded_at", DATETIME),
    ),
)
ROW_RULES = (
    RowRule("null_customer_id", lambda _c: pl.col("customer_id").is_null()),
    RowRule("null_channel", lambda _c: pl.col("channel").is_null()),
    RowRule("null_outcome", lambda _c: pl.col("outcome").is_null()),
    RowRule("null_responded_at", lambda _c: pl.col("responded_at").is_null()),
    RowRule(
        "no_campaign_or_run",
        lambda _c: pl.col("campaign_id").is_null() & pl.col("run_id").is_null(),
    ),
    RowRule("unknown_channel", lambda _c: ~pl.col("channel").is_in(CHANNELS)),
    RowRule("unknown_outcome", lambda _c: ~pl.col("outcome").is_in(OUTCOMES)),
    RowRule("responded_in_future", lambda ctx: pl.col("responded_at") >= ctx.tomorrow),
)


@dataclass(frozen=True)
class ImportResult:
    rows: int
    added: int
    already_present: int
    rejected: pl.DataFrame  # the file's columns + reason

    @property
    def rejected_counts(self) -> dict[str, int]:
        return dict(self.rejected.group_by("reason").len().sort("reason").iter_rows())


def _first_reason(ctx: RowContext) -> pl.Expr:
    expr = pl.when(pl.lit(False)).then(pl.lit(None, pl.String()))
    for rule in ROW_RULES:
        expr = expr.when(rule.rejects(ctx).fill_null(False)).then(pl.lit(rule.reason))
    return expr.otherwise(None).alias("reason")


def read_outcomes_file(path: Path, today: date | None = None) -> tuple[pl.DataFrame, pl.DataFrame]:
    """(good rows, rejected rows with `reason`) of an outcomes file, contract-checked."""
    path = Path(path)
    if not path.is_file():
        raise ContractError([Fault("outcomes", None, f"{path} is not a file (Parquet or CSV)")])
    cast, faults = cast_to_contract(scan_table(path, "outcomes"), OUTCOMES_SPEC)
    if faults:
        raise ContractError(faults)
    ctx = RowContext(today or date.today(), pl.Series("customer_id", [], pl.String))
    marked = cast.with_columns(_first_reason(ctx)).collect()
    bad = marked.filter(pl.col("reason").is_not_null())
    return marked.filter(pl.col("reason").is_null()).drop("reason"), bad


def _resolve_runs(good: pl.DataFrame, engine: Engine) -> tuple[pl.DataFrame, pl.DataFrame]:
    """Attach run_id and campaign_id from the treated decisions; unmatched rows are rejected."""
    treated = read_assignments(engine).filter(pl.col("arm") == Reason.SELECTED.value)
    treated = treated.select("run_id", "as_of", "customer_id", "campaign_id")
    keyed = good.with_row_index("_row")
    by_run = keyed.filter(pl.col("run_id").is_not_null()).join(
        treated.select("run_id", "customer_id", "campaign_id", "as_of"),
        ["run_id", "customer_id"],
        suffix="_ledger",
    )
    by_run = by_run.filter(
        pl.col("campaign_id").is_null() | (pl.col("campaign_id") == pl.col("campaign_id_ledger"))
    ).with_columns(campaign_id=pl.col("campaign_id_ledger"))
    by_campaign = (
        keyed.filter(pl.col("run_id").is_null())
        .drop("run_id")
        .join(treated, ["customer_id", "campaign_id"])
        .filter(pl.col("as_of") <= pl.col("responded_at").dt.date())
        .sort("as_of")
        .group_by("_row")
        .last()
    )
    cols = ["_row", *OUTCOMES_SPEC.schema]
    matched = pl.concat([by_run.select(cols), by_campaign.select(cols)]).unique("_row")
    unmatched = keyed.join(matched.select("_row"), "_row", "anti").drop("_row")
    return matched.drop("_row"), unmatched.with_columns(reason=pl.lit("no_treated_decision"))


def _outcome_key() -> pl.Expr:
    text = pl.concat_str(
        [
            pl.col(c).cast(pl.String).fill_null("")
            for c in ("customer_id", "run_id", "campaign_id", "channel", "outcome")
        ]
        + [pl.col("responded_at").dt.strftime("%Y-%m-%dT%H:%M:%S%.f")],
        separator="|",
    )
    return text.map_batches(
        lambda s: pl.Series([hashlib.sha256(v.encode()).hexdigest() for v in s], dtype=pl.String)
    ).alias("outcome_key")


def import_outcomes(
    path: Path, ledger_url: str, rejected_out: Path | None = None, today: date | None = None
) -> ImportResult:
    """Validate `path`, store its new rows in the ledger database; idempotent."""
    good, rejected = read_outcomes_file(path, today)
    engine = lg.make_engine(ledger_url)
    try:
        if not lg.has_ledger(engine):
            raise ContractError(
                [Fault("outcomes", None, f"no ledger at {ledger_url}: run a selection first")]
            )
        matched, unmatched = _resolve_runs(good, engine)
        rejected = pl.concat([rejected, unmatched.select(rejected.columns)])
        keyed = matched.with_columns(_outcome_key()).unique("outcome_key")
        with lg.locked(engine) as conn:
            store.ensure_tables(conn)
            o = store.outcomes.c
            known = set(conn.execute(sa.select(o.outcome_key)).scalars())
            new = keyed.filter(~pl.col("outcome_key").is_in(list(known)))
            insert_frame(conn, store.outcomes, new.with_columns(imported_at=pl.lit(datetime.now())))
    finally:
        engine.dispose()
    if rejected_out is not None and rejected.height:
        Path(rejected_out).mkdir(parents=True, exist_ok=True)
        rejected.write_parquet(Path(rejected_out) / "outcomes.rejected.parquet")
    total = good.height + rejected.height - unmatched.height
    return ImportResult(total, new.height, keyed.height - new.height, rejected)
