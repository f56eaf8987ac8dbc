"""File-level entry points for the CLI: score a data directory, select, explain a customer."""

from __future__ import annotations

import logging
from datetime import date
from pathlib import Path

import polars as pl

from features.errors import ConfigError
from features.io import load_tables
from serving.access import explain_customer  # re-exported: its home is serving.access
from serving.batch import run_selection
from serving.config import DEFAULT_CAMPAIGNS, load_campaigns, load_serving_config
from serving.outputs import RunSummary
from serving.scoring import SCORE_SCHEMA, feature_explainer, load_bundles, model_versions, score

log = logging.getLogger(__name__)

__all__ = ["explain_customer", "score_job", "select_job"]


def score_job(
    data_dir: Path,
    as_of: date,
    out: Path,
    products: list[str],
    alias: str = "champion",
    tracking_uri: str | None = None,
) -> pl.DataFrame:
    """Score a data directory and write the long scores Parquet file."""
    tables = load_tables(data_dir).tables
    scores = score(tables, as_of, products, alias, tracking_uri)
    out.parent.mkdir(parents=True, exist_ok=True)
    scores.write_parquet(out)
    return scores


def _read_scores(path: Path) -> pl.DataFrame:
    if not path.exists():
        raise ConfigError(f"scores file not found: {path} (run `propensity score` first)")
    scores = pl.read_parquet(path)
    missing = [c for c in SCORE_SCHEMA if c not in scores.columns]
    if missing:
        raise ConfigError(f"{path}: scores lack column(s) {missing}")
    return scores.select([pl.col(c).cast(t) for c, t in SCORE_SCHEMA.items()])


def select_job(
    data_dir: Path,
    as_of: date,
    scores_path: Path,
    *,
    campaigns_path: Path | None = None,
    ledger_url: str | None = None,
    run_id: str | None = None,
    replace: bool = False,
    dry_run: bool = False,
    out: Path = Path("work/selections"),
    work_dir: Path = Path("propensity-work"),
    alias: str = "champion",
    tracking_uri: str | None = None,
    reasons: bool = True,
) -> RunSummary:
    """One selection run from files; reasons come from the models under `alias`."""
    path = campaigns_path or DEFAULT_CAMPAIGNS
    campaigns, config = load_campaigns(path), load_serving_config(path)
    tables = load_tables(data_dir).tables
    scores = _read_scores(scores_path)
    explain = None
    if reasons:
        products = sorted({c.product for c in campaigns if c.active_on(as_of)})
        bundles = load_bundles(products, alias, tracking_uri)
        used = model_versions(scores)
        for product, bundle in bundles.items():
            if used.get(product) not in (None, bundle.version):
                log.warning(
                    "%s scored with version %s but %s is now version %s",
                    product,
                    used[product],
                    alias,
                    bundle.version,
                )
        explain = feature_explainer(tables, as_of, bundles, k=config.reasons_per_offer)
    return run_selection(
        tables,
        scores,
        campaigns,
        config,
        as_of=as_of,
        run_id=run_id or _default_run_id(as_of),
        out_dir=out,
        ledger_url=ledger_url,
        work_dir=work_dir,
        replace=replace,
        dry_run=dry_run,
        explain=explain,
    )


def _default_run_id(as_of: date) -> str:
    from datetime import datetime

    return f"{as_of.isoformat()}-{datetime.now().strftime('%H%M%S')}"
