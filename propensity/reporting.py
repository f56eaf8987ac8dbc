"""Collect what the report shows from the training results, the run summary and the channel
files (so the report shows exactly what was sent, not a recomputation)."""

from __future__ import annotations

from pathlib import Path

import polars as pl

from propensity.config import AppConfig
from propensity.report import ModelSection, ReportData
from serving.outputs import RunSummary
from training.train import ProductResult

PLOTS = ("roc", "gain", "calibration", "importance")


def _catalogue_meanings(config: AppConfig) -> dict[str, str]:
    from features.catalogue import catalogue

    return {f.name: f.meaning for f in catalogue(config.features)}


def model_sections(config: AppConfig, training: dict[str, ProductResult]) -> list[ModelSection]:
    """One section per trained product: metrics, plot files and top drivers."""
    meanings = _catalogue_meanings(config)
    sections = []
    for product, result in training.items():
        metrics: dict[str, float | int | str | None] = dict(result.metrics)
        metrics["baseline_roc_auc"] = result.baseline.get("roc_auc")
        metrics["oracle_roc_auc"] = result.oracle_roc_auc
        metrics["n_test"] = result.counts.get("n_test")
        metrics["model_version"] = result.version if result.trained else result.message
        plot_dir = config.work_dir / "plots" / product
        drivers = [(f, meanings.get(f, "")) for f in result.top_features[:5]]
        sections.append(
            ModelSection(
                product=product,
                metrics=metrics,
                plots={p: plot_dir / f"{p}.png" for p in PLOTS},
                drivers=drivers,
            )
        )
    return sections


def funnel(summary: RunSummary, campaigns: list[str]) -> pl.DataFrame:
    """Customers removed at each gate per campaign (pre-scoring gates apply to every campaign)."""
    pre = [
        {"campaign_id": c, "gate": g, "count": n}
        for c in campaigns
        for g, n in summary.gates.items()
        if g in ("objected", "no_consent_row")
    ]
    below = summary.gates.get("below_threshold_by_campaign", {})
    per = (
        summary.counts.group_by("campaign_id", "reason")
        .agg(count=pl.col("n").sum())
        .rename({"reason": "gate"})
        .select("campaign_id", "gate", pl.col("count").cast(pl.Int64))
    )
    frames = [
        pl.DataFrame(pre, schema={"campaign_id": pl.String, "gate": pl.String, "count": pl.Int64})
    ]
    if isinstance(below, dict) and below:
        frames.append(
            pl.DataFrame(
                {
                    "campaign_id": list(below),
                    "gate": "below_threshold",
                    "count": list(below.values()),
                },
                schema={"campaign_id": pl.String, "gate": pl.String, "count": pl.Int64},
            )
        )
    frames.append(per)
    return pl.concat(frames)


def selection_table(summary: RunSummary, config: AppConfig) -> pl.DataFrame:
    """Selected customers, expected acceptances and value per campaign and channel."""
    files = [p for p in summary.files if p.suffix == ".csv" and p.exists()]
    schema = {"campaign_id": pl.String, "channel": pl.String, "propensity": pl.Float64}
    sent = (
        pl.concat([pl.read_csv(p, schema_overrides=schema).select(list(schema)) for p in files])
        if files
        else pl.DataFrame(schema=schema)
    )
    serving = config.serving_config()
    values = pl.DataFrame(
        {
            "campaign_id": [c.id for c in config.campaigns],
            "product": [c.product for c in config.campaigns],
            "value": [c.value for c in config.campaigns],
        }
    )
    factors = pl.DataFrame(
        {"channel": list(serving.channel_factors), "factor": list(serving.channel_factors.values())}
    )
    return (
        sent.join(values, on="campaign_id", how="left")
        .join(factors, on="channel", how="left")
        .with_columns(accept=pl.col("propensity") * pl.col("factor").fill_null(1.0))
        .group_by("campaign_id", "product", "channel")
        .agg(
            selected=pl.len(),
            mean_propensity=pl.col("propensity").mean(),
            expected_acceptances=pl.col("accept").sum(),
            expected_value_eur=(pl.col("accept") * pl.col("value")).sum(),
        )
        .sort("campaign_id", "channel")
    )


def build_report_data(
    config: AppConfig,
    summary: RunSummary,
    training: dict[str, ProductResult],
    source: str,
    notes: list[str] | None = None,
) -> ReportData:
    notes = [*(notes or []), *(f"{p}: {r.message}" for p, r in training.items())]
    notes.append(f"files: {', '.join(str(Path(p)) for p in summary.files)}")
    return ReportData(
        run_id=summary.run_id,
        as_of=summary.as_of,
        source=source,
        models=model_sections(config, training),
        funnel=funnel(summary, [c.id for c in config.campaigns]),
        selection=selection_table(summary, config),
        notes=notes,
    )
