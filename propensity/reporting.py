"""Collect what the report shows from the training results, the run summary and the channel
files (so the report shows exactly what was sent, not a recomputation)."""

from __future__ import annotations

from pathlib import Path

import polars as pl

from propensity.config import AppConfig
from propensity.report import PLOT_TITLES, ModelSection, ReportData
from serving.outputs import RunSummary
from serving.reasons import GATE_ORDER
from training.train import ProductResult


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
                plots={p: plot_dir / f"{p}.png" for p in PLOT_TITLES},
                drivers=drivers,
            )
        )
    return sections


def funnel(summary: RunSummary, campaigns: list[str]) -> pl.DataFrame:
    """Customers removed at each gate per campaign, every gate listed (zero where none).

    The consent gates act before scoring, so they apply to every campaign alike; the
    below-threshold counts come from the run summary (`below_threshold:<campaign>`).
    """
    counts = {
        (c, g): n
        for c in campaigns
        for g, n in summary.gates.items()
        if g in ("objected", "no_consent_row")
    }
    for key, n in summary.gates.items():
        if key.startswith("below_threshold:"):
            counts[(key.split(":", 1)[1], "below_threshold")] = n
    for row in summary.counts.iter_rows(named=True):
        key = (row["campaign_id"], row["reason"])
        counts[key] = counts.get(key, 0) + row["n"]
    return pl.DataFrame(
        [(c, g, int(counts.get((c, g), 0))) for c in campaigns for g in GATE_ORDER],
        schema={"campaign_id": pl.String, "gate": pl.String, "count": pl.Int64},
        orient="row",
    )


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


def run_campaigns(config: AppConfig, summary: RunSummary) -> list[str]:
    """The campaigns that took part in the run: active, with a model for their product."""
    return [
        c.id
        for c in config.campaigns
        if c.active_on(summary.as_of) and c.product in summary.model_versions
    ]


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
        funnel=funnel(summary, run_campaigns(config, summary)),
        selection=selection_table(summary, config),
        notes=notes,
    )
