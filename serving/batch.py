"""One selection run, in order: consent, eligibility, contact policy, channels, arbitration,
control group, reasons, then the ledger (one locked transaction) and the channel files.
"""

from __future__ import annotations

import dataclasses
import json
import logging
import time
from dataclasses import dataclass
from datetime import date, datetime
from pathlib import Path

import polars as pl
import sqlalchemy as sa

from features.config import FeatureConfig
from features.consent import with_objections
from features.ids import validate_date, validate_run_id
from features.paths import remove_staging_dir
from features.schemas import Tables
from models.products import resolve_products
from serving import ledger as lg
from serving import objections as register
from serving.config import Campaign, ServingConfig, config_hash
from serving.consent import consent_gate
from serving.contact_policy import HISTORY_SCHEMA
from serving.decide import Decision, Inputs, decide
from serving.eligibility import customer_facts, distress_frame, held_products
from serving.ledger_io import insert_frame, merge_imported, read_history
from serving.ledger_lock import check_reachable
from serving.outputs import RunSummary, channel_frames, count_outcomes, final_dir, write_staged
from serving.publish import finish, publish_pending
from serving.reasons import GATE_ORDER, Reason
from serving.scoring import REASONS_SCHEMA, Explainer, model_versions

log = logging.getLogger(__name__)


def _inputs(
    tables: Tables,
    scores: pl.DataFrame,
    campaigns: list[Campaign],
    config: ServingConfig,
    as_of: date,
    distress: pl.LazyFrame | None,
    feature_config: FeatureConfig | None = None,
    facts: pl.LazyFrame | None = None,
) -> tuple[Inputs, dict[str, int]]:
    """Frames that do not depend on the ledger, computed before the lock is taken."""
    gate = consent_gate(tables)
    kept = scores.join(gate.consenting, "customer_id", "semi")
    dropped = (
        scores.select("customer_id").unique().height - kept.select("customer_id").unique().height
    )
    if dropped:
        log.warning(
            "dropped scores of %d customer(s) without consent (objected or no row)", dropped
        )
    if distress is None:
        specs = resolve_products(config.products, [c.product for c in campaigns])
        if any(s.credit for s in specs):
            distress = distress_frame(gate.tables, as_of, config, feature_config)
        else:
            distress = pl.LazyFrame(
                schema={"customer_id": pl.String(), "in_distress": pl.Boolean()}
            )
    inputs = Inputs(
        scores=kept.lazy(),
        facts=(
            customer_facts(gate.tables, as_of, config, feature_config) if facts is None else facts
        )
        .collect()
        .lazy(),
        held=held_products(gate.tables, as_of).collect().lazy(),
        distress=distress.collect().lazy(),
        consents=gate.tables.consents.collect().lazy(),
        history=pl.LazyFrame(schema=HISTORY_SCHEMA),
    )
    gates = {
        "objected": gate.objected,
        "no_consent_row": gate.no_consent_row,
        "scores_without_consent": dropped,
    }
    return inputs, gates


def _lookback(config: ServingConfig) -> tuple[int, int]:
    """Days of history any rule looks at: (all contacts, declines)."""
    p = config.policy
    general = max(p.contacts_window_days, p.phone_window_days, p.product_cooldown_days)
    return general, p.decline_cooldown_days


def _with_reasons(decision: Decision, explain: Explainer | None) -> pl.DataFrame:
    """Decisions with a `reasons` list for the selected rows (the only ones explained)."""
    out = decision.decisions
    chosen = out.filter(pl.col("outcome") == Reason.SELECTED.value).select("customer_id", "product")
    reasons = (
        explain(chosen)
        if explain is not None and chosen.height
        else pl.DataFrame(schema=REASONS_SCHEMA)
    )
    return out.join(reasons, ["customer_id", "product"], "left").sort("customer_id", "campaign_id")


def _log_gates(gates: dict[str, int], counts: pl.DataFrame) -> None:
    for gate, n in gates.items():
        log.info("gate %-24s removed %d", gate, n)
    per_reason = dict(counts.group_by("reason").agg(pl.col("n").sum()).iter_rows())
    for reason in GATE_ORDER:
        if reason in per_reason:
            log.info("gate %-24s %d (customer, campaign) pair(s)", reason, per_reason[reason])


def _write_run(
    conn: sa.Connection, summary: RunSummary, decisions: pl.DataFrame, as_of: date
) -> None:
    """The run row, its decisions and its contacts (selected only), in bulk."""
    run = pl.DataFrame(
        {
            "run_id": [summary.run_id],
            "created_at": [datetime.now()],
            "as_of": [as_of],
            "config_hash": [summary.config_hash],
            "model_versions": [json.dumps(summary.model_versions)],
            "status": ["complete"],  # publication is `published_at` (serving.publish)
            "published_at": pl.Series([None], dtype=pl.Datetime("us")),
            "summary": [json.dumps(summary.to_json())],
        }
    )
    insert_frame(conn, lg.runs, run)
    rows = decisions.with_columns(
        run_id=pl.lit(summary.run_id), reasons=pl.col("reasons").list.join("\n")
    )
    insert_frame(conn, lg.decisions, rows.select([c.name for c in lg.decisions.columns]))
    contacted = rows.filter(pl.col("outcome") == Reason.SELECTED.value).select(
        "customer_id",
        "product",
        "channel",
        "campaign_id",
        "run_id",
        contacted_at=pl.lit(datetime.combine(as_of, datetime.min.time())),
        source=pl.lit("run"),
    )
    insert_frame(conn, lg.contacts, contacted)


def _summary(
    decisions: pl.DataFrame,
    below: pl.DataFrame,
    gates: dict[str, int],
    scores: pl.DataFrame,
    run_id: str,
    as_of: date,
    dry_run: bool,
    digest: str,
) -> RunSummary:
    versions = model_versions(scores)
    gates = {**gates, **{f"below_threshold:{c}": int(n) for c, n in below.iter_rows()}}
    return RunSummary(run_id, as_of, dry_run, digest, versions, gates, count_outcomes(decisions))


def _dry_history(
    engine: sa.Engine, imported: pl.DataFrame, as_of: date, lookback: tuple[int, int]
) -> pl.DataFrame:
    """History for a dry run: the ledger (read only, if it exists) plus unmerged imports."""
    hist = pl.DataFrame(schema=HISTORY_SCHEMA)
    if lg.has_ledger(engine):
        with lg.reading(engine) as conn:
            hist = read_history(conn, as_of, *lookback)
    # imported rows already merged are in `hist`; counting them twice could only over-suppress,
    # so drop exact duplicates of (customer, product, channel, time, outcome)
    return pl.concat([hist, imported.select(list(HISTORY_SCHEMA))]).unique(maintain_order=True)


@dataclass
class _Run:
    """What one run needs besides the ledger connection (keeps `run_selection` short)."""

    inputs: Inputs
    gates: dict[str, int]
    scores: pl.DataFrame
    campaigns: list[Campaign]
    config: ServingConfig
    as_of: date
    run_id: str
    digest: str
    explain: Explainer | None

    def with_register(self, objections: pl.DataFrame) -> _Run:
        """The run with the objection register as read under the ledger lock: a customer
        who objected while the run computed (after its tables were loaded) is not decided on
        and is counted as objected."""
        if objections.is_empty():
            return self
        consents = with_objections(self.inputs.consents, objections).collect()
        stopped = consents.filter(~pl.col("payment_data_marketing").fill_null(False))
        scored = self.inputs.scores.collect()
        late = scored.join(stopped, "customer_id", "semi")["customer_id"].n_unique()
        if not late:
            return self
        log.warning("%d customer(s) objected while the run computed: not decided on", late)
        inputs = dataclasses.replace(
            self.inputs,
            scores=scored.join(stopped, "customer_id", "anti").lazy(),
            consents=consents.lazy(),
        )
        gates = {**self.gates, "objected": self.gates.get("objected", 0) + late}
        return dataclasses.replace(self, inputs=inputs, gates=gates)

    def decide(self, history: pl.DataFrame, dry_run: bool) -> tuple[RunSummary, pl.DataFrame]:
        t0 = time.perf_counter()
        decision = decide(
            _replace_history(self.inputs, history), self.campaigns, self.config, self.as_of
        )
        t1 = time.perf_counter()
        decisions = _with_reasons(decision, self.explain)
        log.info("decided in %.1f s, reasons in %.1f s", t1 - t0, time.perf_counter() - t1)
        summary = _summary(
            decisions,
            decision.below_threshold,
            self.gates,
            self.scores,
            self.run_id,
            self.as_of,
            dry_run,
            self.digest,
        )
        _log_gates(summary.gates, summary.counts)
        return summary, decisions


def run_selection(
    tables: Tables,
    scores: pl.DataFrame,
    campaigns: list[Campaign],
    config: ServingConfig,
    *,
    as_of: date,
    run_id: str,
    out_dir: Path,
    ledger_url: str | None = None,
    work_dir: Path = Path("propensity-work"),
    replace: bool = False,
    dry_run: bool = False,
    explain: Explainer | None = None,
    distress: pl.LazyFrame | None = None,
    feature_config: FeatureConfig | None = None,
    lock_timeout: float | None = None,
    facts: pl.LazyFrame | None = None,
) -> RunSummary:
    """Select the customers to contact in one run and record every decision in the ledger.

    Reads history, decides and writes inside one transaction holding the ledger lock; the
    channel files appear only after it committed, and the run is then marked published.
    Runs committed earlier but never published are published first (`serving.publish`).
    `--replace` redoes only a run that was never published. `dry_run` writes nothing.
    `distress` overrides the responsible-lending flags (else `features.distress` with
    `feature_config`'s rules and the serving config's thresholds). `facts` likewise overrides
    `serving.eligibility.customer_facts` (both computed per customer bucket by
    `serving.buckets`). `lock_timeout` (seconds) overrides `config.lock_timeout_seconds`.
    """
    validate_run_id(run_id)
    validate_date(as_of, "--as-of")
    final = final_dir(out_dir, run_id)
    timeout = lock_timeout if lock_timeout is not None else config.lock_timeout_seconds
    engine = lg.make_engine(lg.ledger_url(ledger_url or config.ledger_url, work_dir), timeout)
    try:
        check_reachable(engine)
        with lg.ledger_errors(engine):
            return _select(
                engine, tables, scores, campaigns, config, as_of, run_id, final, timeout,
                replace=replace, dry_run=dry_run, explain=explain, distress=distress,
                feature_config=feature_config, facts=facts,
            )  # fmt: skip
    finally:
        engine.dispose()


def _select(
    engine: sa.Engine,
    tables: Tables,
    scores: pl.DataFrame,
    campaigns: list[Campaign],
    config: ServingConfig,
    as_of: date,
    run_id: str,
    final: Path,
    timeout: float,
    *,
    replace: bool,
    dry_run: bool,
    explain: Explainer | None,
    distress: pl.LazyFrame | None,
    feature_config: FeatureConfig | None,
    facts: pl.LazyFrame | None,
) -> RunSummary:
    active = [c for c in campaigns if c.active_on(as_of)]
    log.info("%d of %d campaign(s) active on %s", len(active), len(campaigns), as_of)
    inputs, gates = _inputs(tables, scores, active, config, as_of, distress, feature_config, facts)
    imported = tables.contacts.collect()
    run = _Run(
        inputs, gates, scores, active, config, as_of, run_id, config_hash(config, active), explain
    )
    if dry_run:
        run = run.with_register(register.register_of(engine))
        return run.decide(_dry_history(engine, imported, as_of, _lookback(config)), True)[0]
    publish_pending(engine, final.parent, run_id, timeout, skip=run_id if replace else None)
    staging: Path | None = None
    try:
        with lg.locked(engine, run_id, timeout) as conn:
            if not replace:
                lg.ensure_new_run(conn, run_id)
            else:
                if lg.run_exists(conn, run_id) and final.exists():
                    lg.mark_published(conn, run_id)  # its files went out before a kill
                lg.prepare_replace(conn, run_id)
            merge_imported(conn, imported)
            run = run.with_register(register.read_register(conn))
            summary, decisions = run.decide(read_history(conn, as_of, *_lookback(config)), False)
            selected = decisions.filter(pl.col("outcome") == Reason.SELECTED.value)
            staging = write_staged(channel_frames(selected), summary, final.parent)
            t0 = time.perf_counter()
            _write_run(conn, summary, decisions, as_of)
            log.info("wrote %d decision(s) in %.1f s", decisions.height, time.perf_counter() - t0)
    except BaseException:
        if staging is not None:
            remove_staging_dir(staging)  # rolled back: its files must never be published
        raise
    try:
        with lg.locked(engine, run_id, timeout) as conn:
            finish(conn, run_id, staging, final)
    finally:
        remove_staging_dir(staging)
    return summary


def _replace_history(inputs: Inputs, history: pl.DataFrame) -> Inputs:
    return dataclasses.replace(inputs, history=history.lazy())
