"""Collect what the report shows: the run summary, the channel files (what was sent, not a
recomputation), the training results, and from the ledger database the uplift of earlier runs,
the previous run, drift, the challenger's shadow scores and fairness."""

from __future__ import annotations

import json
from datetime import date
from pathlib import Path

import polars as pl
from sqlalchemy.engine import Engine

from monitoring.uplift import UpliftReport
from propensity.config import AppConfig
from propensity.report import CampaignView, ModelSection, ReportData
from propensity.report_text import PLOT_TITLES
from serving.outputs import RunSummary
from serving.reasons import GATE_ORDER, SUPPRESSING, Reason
from training.train import ProductResult


def _catalogue_meanings(config: AppConfig) -> dict[str, str]:
    from features.catalogue import catalogue

    return {f.name: f.meaning for f in catalogue(config.features)}


def _labels(config: AppConfig) -> dict[str, str]:
    return {p.name: p.title for p in config.products}


def model_sections(config: AppConfig, training: dict[str, ProductResult]) -> list[ModelSection]:
    """One section per trained product: metrics, plot files and top drivers in plain words."""
    meanings = _catalogue_meanings(config)
    labels = _labels(config)
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
                label=labels.get(product, product.replace("_", " ")),
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


def _views(
    config: AppConfig,
    summary: RunSummary,
    campaigns: list[str],
    selection: pl.DataFrame,
    previous: dict[str, int] | None,
    uplift: UpliftReport,
) -> list[CampaignView]:
    """Per campaign: funnel with remaining customers, capacity used, previous run, uplift."""
    labels = _labels(config)
    by_id = {c.id: c for c in config.campaigns}
    counts = funnel(summary, campaigns)
    won = summary.counts.filter(pl.col("reason").is_in([Reason.SELECTED, Reason.CONTROL]))
    views = []
    for cid in campaigns:
        gates = dict(
            counts.filter(pl.col("campaign_id") == cid).select("gate", "count").iter_rows()
        )
        remaining = sum(gates.values())
        steps = []
        for gate in GATE_ORDER:
            if gate in SUPPRESSING:
                remaining -= gates.get(gate, 0)
            steps.append((gate, gates.get(gate, 0), remaining))
        used = dict(
            won.filter(pl.col("campaign_id") == cid)
            .group_by("channel")
            .agg(pl.col("n").sum())
            .iter_rows()
        )
        camp = by_id[cid]
        sel = selection.filter(pl.col("campaign_id") == cid)
        views.append(
            CampaignView(
                campaign_id=cid,
                label=labels.get(camp.product, camp.product.replace("_", " ")),
                funnel=steps,
                capacity=[(ch, int(used.get(ch, 0)), camp.capacity[ch]) for ch in camp.channels],
                selected=gates.get(Reason.SELECTED, 0),
                control=gates.get(Reason.CONTROL, 0),
                expected_conversions=float(sel["expected_acceptances"].sum()),
                expected_value=float(sel["expected_value_eur"].sum()),
                previous_selected=None if previous is None else previous.get(cid, 0),
                uplift=uplift.campaigns.get(cid),
            )
        )
    return views


def _previous(engine: Engine, summary: RunSummary) -> tuple[str | None, dict[str, int] | None]:
    """The latest earlier batch run and its contacted customers per campaign (the runs of
    real-time events, `serving.online_ledger`, hold one event each and counts by reason)."""
    from monitoring.ledger import read_runs

    runs = read_runs(engine).filter(
        (pl.col("run_id") != summary.run_id) & (pl.col("as_of") <= summary.as_of)
    )
    batch = [
        (r["run_id"], said)
        for r in runs.iter_rows(named=True)
        if (said := json.loads(r["summary"])).get("source") != "events"
    ]
    if not batch:
        return None, None
    run_id, said = batch[-1]
    counts = said.get("counts", [])
    selected: dict[str, int] = {}
    for row in counts:
        if row.get("reason") == Reason.SELECTED:
            selected[row["campaign_id"]] = selected.get(row["campaign_id"], 0) + int(row["n"])
    return run_id, selected


def _checks(
    engine: Engine,
    config: AppConfig,
    run_id: str,
    products: pl.LazyFrame,
    observed: date,
) -> tuple[pl.DataFrame, pl.DataFrame, pl.DataFrame]:
    """This run's drift and fairness; the challenger compared on earlier runs' customers."""
    from monitoring import store
    from monitoring.ledger import read_runs, read_table
    from monitoring.shadow import compare

    runs = read_runs(engine)
    drift = read_table(engine, store.drift, [run_id])
    if drift.height:
        meanings = _catalogue_meanings(config)
        drift = drift.with_columns(
            meaning=pl.col("name").replace_strict(meanings, default=pl.col("name")),
            product=pl.col("product").replace_strict(_labels(config), default=pl.col("product")),
        )
    fairness = read_table(engine, store.fairness, [run_id])
    earlier = runs.filter((pl.col("run_id") != run_id) & (pl.col("as_of") < observed))
    shadow = read_table(engine, store.shadow_scores, earlier["run_id"].to_list())
    challenger = compare(shadow, runs, products, config.monitoring.attribution_days, observed)
    return drift, challenger, fairness


def build_report_data(
    config: AppConfig,
    summary: RunSummary,
    training: dict[str, ProductResult],
    source: str,
    notes: list[str] | None = None,
    products: pl.LazyFrame | None = None,
) -> ReportData:
    """Everything the run report shows; `products` (the run's products table) measures the
    uplift of earlier runs up to this run's date."""
    from monitoring.uplift import summarise
    from propensity.loop import trend_frame
    from serving.ledger import has_ledger, ledger_url, make_engine

    notes = [*(notes or []), *(f"{p}: {r.message}" for p, r in training.items())]
    notes.append(f"files: {', '.join(str(Path(p)) for p in summary.files)}")
    selection = selection_table(summary, config)
    engine = make_engine(ledger_url(config.ledger.url, config.work_dir))
    uplift, previous, prev_counts = UpliftReport(), None, None
    drift = challenger = fairness = trend_rows = pl.DataFrame()
    try:
        if has_ledger(engine) and not summary.dry_run:
            from monitoring.uplift import measure

            openings = products if products is not None else _empty_products()
            values = {c.id: c.value for c in config.campaigns}
            _, cells = measure(engine, openings, config.monitoring, summary.as_of, values)
            uplift = summarise(cells.filter(pl.col("run_id") != summary.run_id), config.monitoring)
            previous, prev_counts = _previous(engine, summary)
            drift, challenger, fairness = _checks(
                engine, config, summary.run_id, openings, summary.as_of
            )
            trend_rows = trend_frame(engine, summarise(cells, config.monitoring), cells, 6)
    finally:
        engine.dispose()
    campaigns = run_campaigns(config, summary)
    channels = dict(
        summary.counts.filter(pl.col("reason") == Reason.SELECTED)
        .group_by("channel")
        .agg(pl.col("n").sum())
        .sort("channel")
        .iter_rows()
    )
    return ReportData(
        run_id=summary.run_id,
        as_of=summary.as_of,
        source=source,
        channels={str(k): int(v) for k, v in channels.items()},
        expected_conversions=float(selection["expected_acceptances"].sum()),
        expected_value=float(selection["expected_value_eur"].sum()),
        campaigns=_views(config, summary, campaigns, selection, prev_counts, uplift),
        models=model_sections(config, training),
        uplift=uplift.overall,
        drift=drift,
        challenger=challenger,
        fairness=fairness,
        trend=trend_rows,
        previous_run=previous,
        notes=notes,
    )


def _empty_products() -> pl.LazyFrame:
    from features.schemas import PRODUCTS, empty_frame

    return empty_frame(PRODUCTS)
