"""The run report: one self-contained HTML file (plots embedded) that a marketer can open.

It shows, per product, how good the model is (against the baseline and, on synthetic data,
the oracle) and what drives it; per campaign, who was removed at which gate; and what the
selection is expected to bring.
"""

from __future__ import annotations

import base64
import html
import io
from dataclasses import dataclass, field
from datetime import date
from pathlib import Path

import polars as pl
from matplotlib.figure import Figure

from features.paths import write_text_atomic
from serving.reasons import GATE_ORDER, order_expr

METRICS = (
    ("roc_auc", "ROC-AUC"),
    ("baseline_roc_auc", "baseline AUC"),
    ("oracle_roc_auc", "oracle AUC"),
    ("pr_auc", "PR-AUC"),
    ("lift_at_10pct", "lift top 10%"),
    ("brier", "Brier"),
    ("ece", "calibration error"),
    ("n_test", "test customers"),
    ("model_version", "version"),
)
PLOT_TITLES = {
    "roc": "ROC curve",
    "gain": "Cumulative gain",
    "calibration": "Calibration",
    "importance": "Top drivers (mean |SHAP|)",
}


@dataclass(frozen=True)
class ModelSection:
    product: str
    metrics: dict[str, float | int | str | None]
    plots: dict[str, Path] = field(default_factory=dict)
    drivers: list[tuple[str, str]] = field(default_factory=list)  # (feature, meaning)


@dataclass(frozen=True)
class ReportData:
    run_id: str
    as_of: date
    source: str
    models: list[ModelSection]
    funnel: pl.DataFrame  # campaign_id, gate, count
    selection: pl.DataFrame  # campaign_id, product, channel, selected, expected_acceptances, ...
    notes: list[str] = field(default_factory=list)


def _img(data: bytes, alt: str) -> str:
    b64 = base64.b64encode(data).decode("ascii")
    return f'<img alt="{html.escape(alt)}" src="data:image/png;base64,{b64}">'


def _fmt(value: object) -> str:
    if value is None:
        return "–"
    if isinstance(value, float):
        return f"{value:,.3f}" if abs(value) < 100 else f"{value:,.0f}"
    if isinstance(value, int):
        return f"{value:,}"
    return html.escape(str(value))


def _table(df: pl.DataFrame) -> str:
    head = "".join(f"<th>{html.escape(c)}</th>" for c in df.columns)
    rows = "".join(
        "<tr>" + "".join(f"<td>{_fmt(v)}</td>" for v in row) + "</tr>" for row in df.iter_rows()
    )
    return f"<table><thead><tr>{head}</tr></thead><tbody>{rows}</tbody></table>"


def _funnel_png(funnel: pl.DataFrame, campaign: str) -> bytes:
    rows = funnel.filter(pl.col("campaign_id") == campaign)
    counts = dict(zip(rows["gate"], rows["count"], strict=True))
    gates = list(GATE_ORDER)
    fig = Figure(figsize=(7, 0.35 * len(gates) + 1.2))
    ax = fig.subplots()
    colours = ["#2a9d8f" if g == "selected" else "#8d99ae" for g in gates]
    ax.barh(gates[::-1], [counts.get(g, 0) for g in gates][::-1], color=colours[::-1])
    ax.set_xlabel("customers")
    ax.set_title(f"Selection funnel: {campaign}")
    fig.tight_layout()
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=90)
    return buf.getvalue()


def _model_section(section: ModelSection) -> str:
    metrics = "".join(
        f"<tr><th>{label}</th><td>{_fmt(section.metrics.get(key))}</td></tr>"
        for key, label in METRICS
    )
    plots = "".join(
        f"<figure>{_img(section.plots[k].read_bytes(), PLOT_TITLES[k])}"
        f"<figcaption>{PLOT_TITLES[k]}</figcaption></figure>"
        for k in PLOT_TITLES
        if k in section.plots and section.plots[k].exists()
    )
    drivers = "".join(
        f"<li><code>{html.escape(f)}</code>: {html.escape(m)}</li>" for f, m in section.drivers
    )
    return (
        f"<section><h3>{html.escape(section.product)}</h3>"
        f'<table class="kv">{metrics}</table>'
        f"<p>Top drivers:</p><ol>{drivers}</ol><div class='plots'>{plots}</div></section>"
    )


CSS = """body{font-family:system-ui,sans-serif;margin:2em;max-width:1200px;color:#222}
table{border-collapse:collapse;margin:.5em 0}td,th{border:1px solid #ccc;padding:.25em .6em;
text-align:right}th{background:#f2f2f2}.kv th{text-align:left}.plots{display:flex;
flex-wrap:wrap;gap:1em}figure{margin:0}img{max-width:380px}section{margin-bottom:2em}"""


def render_report(data: ReportData) -> str:
    """The report as one HTML string with every plot inlined as a data URI."""
    campaigns = data.funnel["campaign_id"].unique(maintain_order=True).to_list()
    funnels = "".join(
        f"<figure>{_img(_funnel_png(data.funnel, c), f'funnel {c}')}</figure>" for c in campaigns
    )
    funnel_table = (
        data.funnel.pivot(on="campaign_id", index="gate", values="count")
        .with_columns(order_expr("gate"))
        .sort("_gate_order")
        .drop("_gate_order")
        .fill_null(0)
        if data.funnel.height
        else data.funnel
    )
    notes = "".join(f"<li>{html.escape(n)}</li>" for n in data.notes)
    return f"""<!doctype html><html lang="en"><head><meta charset="utf-8">
<title>Propensity run {html.escape(data.run_id)}</title><style>{CSS}</style></head><body>
<h1>Propensity run {html.escape(data.run_id)}</h1>
<p>Run date {data.as_of.isoformat()} · data: {html.escape(data.source)}</p>
<h2>Model quality per product</h2>
<p>Measured on the latest month whose outcome is known, never seen in training. ROC-AUC 0.5 is
chance; the baseline is a logistic regression on the same features; the oracle (synthetic data
only) uses the true probabilities and is the best any model could do.</p>
{"".join(_model_section(m) for m in data.models)}
<h2>Selection funnel</h2>
<p>Customers removed at each gate, in order. Objectors and customers without a consent row are
removed before scoring: their payments are never profiled.</p>
{_table(funnel_table)}<div class="plots">{funnels}</div>
<h2>Selected per campaign and channel</h2>
{_table(data.selection)}
<ul>{notes}</ul>
</body></html>"""


def write_report(data: ReportData, path: Path) -> Path:
    return write_text_atomic(path, render_report(data))  # a failure leaves the old file
