"""The one decision engine: tables + scores + one typed config -> decisions, ledger, files.

`propensity run`, `propensity score`, `propensity select`, the notebooks and the HTTP service
all call these functions; nothing else turns tables into decisions. The order is fixed:
consent gate (objectors never reach a feature) -> features with the configuration the models
were trained with -> scores -> `serving.batch.run_selection` (eligibility, contact policy,
channels, arbitration, control group, ledger, channel files).
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import date
from pathlib import Path
from typing import TYPE_CHECKING

import polars as pl

from features.config import FeatureConfig
from features.errors import ConfigError, ModelNotFoundError
from features.pipeline import build_features
from features.schemas import Tables
from features.timetravel import as_known_at
from models.bundle import ModelBundle
from serving.batch import run_selection
from serving.config import Campaign, ServingConfig
from serving.consent import ConsentGate, consent_gate
from serving.eligibility import per_customer
from serving.ledger import ledger_url
from serving.online_store import write_online_snapshot
from serving.outputs import RunSummary
from serving.scoring import (
    SCORE_SCHEMA,
    Explainer,
    explain_features,
    feature_explainer,
    score_features,
)

if TYPE_CHECKING:
    from serving.buckets import Buckets

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class EngineConfig:
    """What the engine needs from the one config file (built by `propensity.config`)."""

    serving: ServingConfig  # policy, products, distress, ledger URL, channel rules
    campaigns: tuple[Campaign, ...]
    features: FeatureConfig
    work_dir: Path
    tracking_uri: str
    alias: str = "champion"

    @property
    def out_dir(self) -> Path:
        return self.work_dir / "out"


@dataclass(frozen=True)
class Models:
    """The models of one alias: a bundle per product that has one, a note per product without."""

    bundles: dict[str, ModelBundle]
    notes: tuple[str, ...]


@dataclass(frozen=True)
class Scored:
    """Scores of the consenting customers and the features they were computed from."""

    gate: ConsentGate
    features: pl.DataFrame
    scores: pl.DataFrame
    distress: pl.DataFrame | None = None  # with a serving config: `serving.eligibility`
    facts: pl.DataFrame | None = None


@dataclass
class RunResult:
    """One decided run: its summary, the scores it used and what was skipped and why."""

    summary: RunSummary
    scores: pl.DataFrame
    notes: list[str] = field(default_factory=list)
    features: pl.DataFrame | None = None


def active_campaigns(campaigns: Iterable[Campaign], as_of: date) -> list[Campaign]:
    return [c for c in campaigns if c.active_on(as_of)]


def load_models(products: Iterable[str], alias: str, tracking_uri: str) -> Models:
    """Each product's bundle under `alias`; a product without one is skipped with a note."""
    from models.registry import load_bundle

    bundles: dict[str, ModelBundle] = {}
    notes = []
    for product in sorted(set(products)):
        try:
            bundles[product] = load_bundle(product, alias, tracking_uri)
        except ModelNotFoundError:
            notes.append(f"{product} skipped: no {alias} model registered")
    for note in notes:
        log.warning(note)
    return Models(bundles, tuple(notes))


def check_models(bundles: dict[str, ModelBundle], feature_config: FeatureConfig) -> None:
    """ConfigError naming the setting when a model was trained with other feature settings."""
    from models.bundle import check_feature_config

    for bundle in bundles.values():
        check_feature_config(bundle, feature_config)


def score_customers(
    tables: Tables,
    as_of: date,
    feature_config: FeatureConfig,
    bundles: dict[str, ModelBundle],
    serving: ServingConfig | None = None,
) -> Scored:
    """Features and scores of every customer who may be profiled (objectors never get here);
    with `serving`, also the distress flags and eligibility facts, from the same scan."""
    check_models(bundles, feature_config)
    gate = consent_gate(as_known_at(tables, as_of))
    if serving is None:
        features = build_features(gate.tables, as_of, feature_config).collect()
        distress = facts = None
    else:
        found = per_customer(gate.tables, as_of, serving, feature_config)
        features, distress, facts = found.features, found.distress, found.facts
    log.info("built features for %d consenting customer(s) as of %s", features.height, as_of)
    scores = score_features(features, bundles) if bundles else pl.DataFrame(schema=SCORE_SCHEMA)
    return Scored(gate, features, scores, distress, facts)


@dataclass(frozen=True)
class ScoredAll:
    """What `score_all` found: the scores, how many consenting customers got features and the
    consent gate's counts (objectors appear only as counts)."""

    scores: pl.DataFrame
    customers: int
    gate: ConsentGate


def score_all(
    tables: Tables,
    as_of: date,
    feature_config: FeatureConfig,
    bundles: dict[str, ModelBundle],
    compute: Buckets | None = None,
) -> ScoredAll:
    """Scores of every consenting customer as `decide_run` computes them: in one go, or per
    customer bucket when `compute` is given (`propensity.compute.open_compute`; in process
    or on Dask), so `propensity score` follows `[compute]` exactly as `propensity run` does."""
    tables = as_known_at(tables, as_of)
    if compute is None:
        scored = score_customers(tables, as_of, feature_config, bundles)
        return ScoredAll(scored.scores, scored.features.height, scored.gate)
    check_models(bundles, feature_config)
    bucketed = compute.score(tables, as_of, feature_config, ServingConfig(), bundles)
    return ScoredAll(bucketed.scores, bucketed.customers(), consent_gate(tables))


def _explainer(
    scored: Scored | None,
    tables: Tables,
    as_of: date,
    bundles: dict[str, ModelBundle],
    config: EngineConfig,
) -> Explainer | None:
    """Reasons from the features already built for scoring, else built for the chosen few."""
    if not bundles:
        return None
    k = config.serving.reasons_per_offer
    if scored is None:
        return feature_explainer(tables, as_of, bundles, config.features, k=k)

    def explain(pairs: pl.DataFrame) -> pl.DataFrame:
        return explain_features(scored.features, bundles, pairs, as_of, k, config.features)

    return explain


def decide_run(
    tables: Tables,
    config: EngineConfig,
    *,
    as_of: date,
    run_id: str,
    scores: pl.DataFrame | None = None,
    dry_run: bool = False,
    replace: bool = False,
    reasons: bool = True,
    compute: Buckets | None = None,
    stage: Callable[[str], None] | None = None,
) -> RunResult:
    """Decide one run and record it: score with the champions (or use `scores`), then select.

    Campaigns whose product has no model under the alias are left out with a note; a run
    with no active campaign, or where nobody passes a gate, is a normal (empty) run. With
    `compute` (`serving.buckets`), scoring runs per customer bucket (in process or on Dask)
    and only the selection runs here; the features then stay in the buckets until the online
    snapshot gathers them. `stage(name)` is told when each stage starts (the job's timings).
    """
    stage = stage or (lambda _name: None)
    stage("features and scores")
    tables = as_known_at(tables, as_of)  # time travel: nothing on or after the run date
    active = active_campaigns(config.campaigns, as_of)
    notes = []
    if len(active) < len(config.campaigns):
        notes.append(f"{len(active)} of {len(config.campaigns)} campaign(s) active on {as_of}")
    needed = {c.product for c in active}
    scored = None
    if scores is None or reasons:
        models = load_models(needed, config.alias, config.tracking_uri)
        notes += models.notes
        bundles = models.bundles
    else:  # scores from a file, no reasons asked: the models are not needed
        bundles = {}
        notes.append("offers carry no reasons (--no-reasons)")
    distress = facts = bucketed = None
    if scores is None and compute is not None:
        check_models(bundles, config.features)
        bucketed = compute.score(tables, as_of, config.features, config.serving, bundles)
        scores, distress, facts = bucketed.scores, bucketed.distress.lazy(), bucketed.facts.lazy()
    elif scores is None:
        # features, distress flags and facts from one scan, as each bucket does
        scored = score_customers(tables, as_of, config.features, bundles, config.serving)
        scores = scored.scores
        assert scored.distress is not None and scored.facts is not None
        distress, facts = scored.distress.lazy(), scored.facts.lazy()
    else:
        check_models(bundles, config.features)
        if reasons:
            scores = scores.filter(pl.col("product").is_in(list(bundles)))
    served = set(scores["product"].unique())
    campaigns = [c for c in active if c.product in served]
    if reasons and bucketed is not None:  # the features stay in the buckets: explain there
        explain = bucketed.explainer(as_of, config.serving.reasons_per_offer, config.features)
    else:
        explain = _explainer(scored, tables, as_of, bundles, config) if reasons else None
    stage("selection, ledger and channel files")
    summary = run_selection(
        tables,
        scores,
        campaigns,
        config.serving,
        as_of=as_of,
        run_id=run_id,
        out_dir=config.out_dir,
        ledger_url=config.serving.ledger_url,
        work_dir=config.work_dir,
        replace=replace,
        dry_run=dry_run,
        explain=explain,
        feature_config=config.features,
        distress=distress,
        facts=facts,
    )
    features = scored.features if scored is not None else None
    if bucketed is not None and not dry_run:
        stage("gathering the features of the buckets")
        # the snapshot and the monitoring checks need every customer's features: gathered once
        # (1M customers x 212 features: ~1.7 GB of floats), the facts and flags come along
        features = bucketed.features()
    if features is not None and not dry_run:  # the real-time service starts from this run
        stage("online snapshot")
        write_online_snapshot(
            ledger_url(config.serving.ledger_url, config.work_dir),
            tables,
            features,
            as_of,
            config.serving,
            run_id=run_id,
            feature_config=config.features,
            facts=facts.collect() if facts is not None else None,
            distress=distress.collect() if distress is not None else None,
        )
    summary.notes = notes
    return RunResult(summary, scores, notes, features)


def read_scores(path: Path) -> pl.DataFrame:
    """A scores Parquet file written by `propensity score` (columns of SCORE_SCHEMA)."""
    if not path.exists():
        raise ConfigError(f"--scores: file not found: {path} (run `propensity score` first)")
    try:
        scores = pl.read_parquet(path)
    except (OSError, pl.exceptions.ComputeError) as exc:
        raise ConfigError(f"--scores: {path} is not a Parquet file ({exc})") from None
    missing = [c for c in SCORE_SCHEMA if c not in scores.columns]
    if missing:
        raise ConfigError(f"--scores: {path} lacks column(s) {missing}, e.g. 'propensity'")
    return scores.select([pl.col(c).cast(t) for c, t in SCORE_SCHEMA.items()])


def default_run_id(as_of: date) -> str:
    """The run id every command uses when none is given: `run-<as_of>`."""
    return f"run-{as_of.isoformat()}"
