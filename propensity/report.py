"""The run report: one self-contained HTML file, written for marketing first.

It opens with a headline (contacts by channel, expected conversions and value, the measured
uplift of earlier runs with its interval), then one section per campaign (customers remaining
after each gate, capacity used, change since the previous run), then a data-science section
(model quality, drivers in plain words, drift, the challenger, fairness) and a glossary.
One number format throughout (`fmt_*`); gates in `serving.reasons.GATE_ORDER`; plots inlined.
"""

from __future__ import annotations

import base64
import re
from dataclasses import dataclass, field
from datetime import date
from pathlib import Path

import polars as pl

from monitoring.stats import Uplift
from propensity.report_text import (
    GATE_LABELS,
    GLOSSARY,
    METRICS,
    PLOT_TITLES,
    SEGMENT_LABELS,
    esc,
    fmt_int,
    fmt_money,
    fmt_num,
    fmt_pct,
)
from serving.reasons import GATE_ORDER, Reason


@dataclass(frozen=True)
class ModelSection:
    product: str
    metrics: dict[str, float | int | str | None]
    plots: dict[str, Path] = field(default_factory=dict)
    drivers: list[tuple[str, str]] = field(default_factory=list)  # (feature, meaning)
    label: str = ""


@dataclass(frozen=True)
class CampaignView:
    campaign_id: str
    label: str  # the product's plain name
    funnel: list[tuple[str, int, int]]  # (gate, removed, remaining after it), gate order
    capacity: list[tuple[str, int, int]]  # (channel, used, available)
    selected: int
    control: int
    expected_conversions: float
    expected_value: float
    previous_selected: int | None = None
    uplift: Uplift | None = None


@dataclass(frozen=True)
class ReportData:
    run_id: str
    as_of: date
    source: str
    channels: dict[str, int]  # contacts per channel
    expected_conversions: float
    expected_value: float
    campaigns: list[CampaignView]
    models: list[ModelSection]
    uplift: Uplift | None = None  # earlier runs, overall
    drift: pl.DataFrame = field(
        default_factory=pl.DataFrame
    )  # product, kind, name, meaning, psi, level
    challenger: pl.DataFrame = field(default_factory=pl.DataFrame)
    fairness: pl.DataFrame = field(default_factory=pl.DataFrame)
    trend: pl.DataFrame = field(default_factory=pl.DataFrame)
    previous_run: str | None = None
    currency: str = "EUR"
    notes: list[str] = field(default_factory=list)


def _img(data: bytes, alt: str) -> str:
    b64 = base64.b64encode(data).decode("ascii")
    return f'<img alt="{esc(alt)}" src="data:image/png;base64,{b64}">'


_NUMBER = re.compile(r"^(EUR )?[-+]?[\d,.]+%?$|^–$")


def _cell(text: str) -> str:
    """Numbers right-aligned, words left-aligned."""
    return f"<td>{text}</td>" if _NUMBER.match(text) else f'<td class="t">{text}</td>'


def _table(headers: list[str], rows: list[list[str]], cls: str = "") -> str:
    head = "".join(f"<th>{esc(h)}</th>" for h in headers)
    body = "".join("<tr>" + "".join(_cell(c) for c in r) + "</tr>" for r in rows)
    return f'<table class="{cls}"><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>'


def _uplift_text(u: Uplift | None) -> str:
    if u is None or u.uplift_rel is None:
        return "not measurable yet (no earlier run with conversions in both groups)"
    status = "final" if u.final else "provisional: attribution window still open"
    return (
        f"<b>{fmt_pct(u.uplift_rel, signed=True)}</b> (95% interval "
        f"{fmt_pct(u.ci_low, True)} to {fmt_pct(u.ci_high, True)}; {fmt_int(u.treated_n)} "
        f"contacted vs {fmt_int(u.control_n)} in control; {status})"
    )


def _headline(d: ReportData) -> str:
    total = sum(d.channels.values())
    per = ", ".join(f"{esc(c)} {fmt_int(n)}" for c, n in d.channels.items() if n)
    return (
        f'<section id="headline"><h2>Headline</h2><p class="big">{fmt_int(total)} customers '
        f'contacted ({per or "none"}).</p><p class="big">Expected conversions '
        f"{fmt_num(d.expected_conversions, 1)}, expected value "
        f"{fmt_money(d.expected_value, d.currency)}.</p>"
        f"<p>Measured uplift of earlier runs: {_uplift_text(d.uplift)}</p></section>"
    )


def _funnel(c: CampaignView) -> str:
    start = c.funnel[0][2] + c.funnel[0][1] if c.funnel else 0
    rows = []
    for gate, removed, remaining in c.funnel:
        if not removed and gate not in (Reason.SELECTED, Reason.CONTROL):
            continue
        width = 100 * remaining / start if start else 0
        bar = f'<div class="bar"><span style="width:{width:.1f}%"></span></div>'
        after = (
            fmt_int(removed) if gate in (Reason.SELECTED, Reason.CONTROL) else fmt_int(remaining)
        )
        rows.append([esc(GATE_LABELS.get(gate, gate)), fmt_int(removed), after, bar])
    return _table(["Step", "Customers at this step", "Remaining", ""], rows, "funnel")


def _campaign(c: CampaignView, d: ReportData) -> str:
    prev = (
        f"{fmt_int(c.previous_selected)} in the previous run, change "
        f"{fmt_int(c.selected - c.previous_selected)}"
        if c.previous_selected is not None
        else "no previous run"
    )
    cap = _table(
        ["Channel", "Used", "Available", "Share used"],
        [
            [esc(ch), fmt_int(u), fmt_int(a), fmt_pct(u / a if a else None)]
            for ch, u, a in c.capacity
        ],
    )
    return (
        f"<section><h3>{esc(c.label)} <small>({esc(c.campaign_id)})</small></h3>"
        f"<p>{fmt_int(c.selected)} contacted, {fmt_int(c.control)} held back as control; "
        f"expected conversions {fmt_num(c.expected_conversions, 1)}, value "
        f"{fmt_money(c.expected_value, d.currency)}. Previous run: {prev}.</p>"
        f"<p>Measured uplift of earlier runs: {_uplift_text(c.uplift)}</p>"
        f"<h4>Who remains after each step</h4>{_funnel(c)}<h4>Capacity</h4>{cap}</section>"
    )


def _model(m: ModelSection) -> str:
    rows = []
    for key, label, kind in METRICS:
        v = m.metrics.get(key)
        text = fmt_int(v) if kind == "int" else fmt_num(v, 3) if kind == "num" else esc(v or "–")
        rows.append([esc(label), text])
    drivers = "".join(
        f"<li>{esc(meaning or feature)} <code>{esc(feature)}</code></li>"
        for feature, meaning in m.drivers
    )
    plots = "".join(
        f"<figure>{_img(m.plots[k].read_bytes(), PLOT_TITLES[k])}"
        f"<figcaption>{PLOT_TITLES[k]}</figcaption></figure>"
        for k in PLOT_TITLES
        if k in m.plots and m.plots[k].exists()
    )
    return (
        f"<section><h4>{esc(m.label or m.product)}</h4>{_table(['Measure', 'Value'], rows, 'kv')}"
        f"<p>What drives the score most:</p><ol>{drivers}</ol><div class='plots'>{plots}</div>"
        "</section>"
    )


def _frame_table(
    frame: pl.DataFrame, columns: dict[str, tuple[str, str]], empty: str = "Nothing to show."
) -> str:
    """A frame as a table: column -> (header, format: int | num | pct | text | level | ...)."""
    if frame.is_empty():
        return f"<p>{esc(empty)}</p>"
    fmts = {
        "int": fmt_int,
        "num": lambda v: fmt_num(v, 3),
        "pct": fmt_pct,
        "text": lambda v: esc("–" if v is None else v),
        "level": lambda v: f'<span class="{esc(v)}">{esc(v)}</span>',
        "flag": lambda v: '<span class="warn">check</span>' if v else "ok",
        "status": lambda v: "–" if v is None else "final" if v else "provisional",
        "segment": lambda v: esc(SEGMENT_LABELS.get(v, v)),
    }
    cols = [c for c in columns if c in frame.columns]
    rows = [[fmts[columns[c][1]](r[c]) for c in cols] for r in frame.iter_rows(named=True)]
    return _table([columns[c][0] for c in cols], rows)


def _science(d: ReportData) -> str:
    top = (
        d.drift.sort("psi", descending=True)
        .group_by("product", "kind", maintain_order=True)
        .head(5)
        if d.drift.height
        else d.drift
    )
    drift = _frame_table(
        top,
        {
            "product": ("Product", "text"),
            "kind": ("What", "text"),
            "meaning": ("Measure", "text"),
            "psi": ("PSI", "num"),
            "level": ("Status", "level"),
        },
    )
    challenger = _frame_table(
        d.challenger,
        {
            "product": ("Product", "text"),
            "champion_version": ("Champion", "text"),
            "challenger_version": ("Challenger", "text"),
            "customers": ("Customers", "int"),
            "converters": ("Converted", "int"),
            "champion_roc_auc": ("Champion ROC-AUC", "num"),
            "challenger_roc_auc": ("Challenger ROC-AUC", "num"),
            "observed_rate": ("Observed rate", "pct"),
            "champion_mean_predicted": ("Champion predicted", "pct"),
            "challenger_mean_predicted": ("Challenger predicted", "pct"),
        },
        "No challenger scored in an earlier run whose outcomes are known yet.",
    )
    fairness = _frame_table(
        d.fairness,
        {
            "campaign_id": ("Campaign", "text"),
            "segment": ("Segment", "segment"),
            "grp": ("Group", "text"),
            "scored": ("Scored", "int"),
            "selected": ("Selected", "int"),
            "rate": ("Selection rate", "pct"),
            "ratio": ("Ratio to best", "num"),
            "warn": ("Four-fifths rule", "flag"),
        },
    )
    return (
        '<section id="science"><h2>For the data scientist</h2>'
        "<p>Model quality is measured on the latest month whose outcome is known, never seen in "
        "training.</p>"
        f"{''.join(_model(m) for m in d.models)}"
        f"<h3>Drift since training (largest first)</h3>{drift}"
        f"<h3>Challenger in shadow</h3><p>Scored beside the champion, never used to decide; "
        f"promotion stays a human decision.</p>{challenger}"
        f"<h3>Selection rates by group</h3>{fairness}</section>"
    )


def _trend(frame: pl.DataFrame) -> str:
    return _frame_table(
        frame,
        {
            "run_id": ("Run", "text"),
            "as_of": ("Run date", "text"),
            "contacts": ("Contacted", "int"),
            "control": ("Control", "int"),
            "conversions": ("Conversions (contacted)", "int"),
            "uplift": ("Uplift", "pct"),
            "ci_low": ("95% low", "pct"),
            "ci_high": ("95% high", "pct"),
            "final": ("Status", "status"),
            "max_feature_psi": ("Largest feature PSI", "num"),
            "max_score_psi": ("Largest score PSI", "num"),
            "drift_alerts": ("Drift alerts", "int"),
        },
    )


CSS = """body{font-family:system-ui,sans-serif;margin:1.5em auto;max-width:1100px;color:#222;
padding:0 1em}table{border-collapse:collapse;margin:.5em 0}td,th{border:1px solid #ccc;
padding:.25em .6em;text-align:right}th{background:#f2f2f2}td.t,th:first-child{text-align:left}
.big{font-size:1.3em;margin:.3em 0}#headline{background:#eef6f4;padding:.6em 1em;
border-radius:6px}.bar{width:220px;background:#eee;height:.8em}.bar span{display:block;
height:100%;background:#2a9d8f}.plots{display:flex;flex-wrap:wrap;gap:1em}figure{margin:0}
img{max-width:340px}.warn{color:#b36b00;font-weight:bold}.alert{color:#c0392b;
font-weight:bold}dt{font-weight:bold}"""


def _page(title: str, body: str) -> str:
    return (
        f'<!doctype html><html lang="en"><head><meta charset="utf-8"><title>{esc(title)}'
        f"</title><style>{CSS}</style></head><body>{body}</body></html>"
    )


def render_report(d: ReportData) -> str:
    """The report as one HTML string with every plot inlined as a data URI."""
    glossary = "".join(f"<dt>{esc(t)}</dt><dd>{esc(m)}</dd>" for t, m in GLOSSARY)
    notes = "".join(f"<li>{esc(n)}</li>" for n in d.notes)
    body = (
        f"<h1>Campaign run of {d.as_of.isoformat()}</h1>{_headline(d)}"
        f"<h2>Campaigns</h2>{''.join(_campaign(c, d) for c in d.campaigns)}"
        + (f"<h2>Recent runs</h2>{_trend(d.trend)}" if d.trend.height else "")
        + f"{_science(d)}<h2>Glossary</h2><dl>{glossary}</dl>"
        f"<p><small>Run {esc(d.run_id)}, data {esc(d.source)}.</small></p><ul>{notes}</ul>"
    )
    return _page(f"Campaign run {d.run_id}", body)


def write_report(data: ReportData, path: Path) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(render_report(data), encoding="utf-8")
    return path


def write_trend_report(frame: pl.DataFrame, path: Path) -> Path:
    """`propensity report --runs N`: the trend table on its own page."""
    path.parent.mkdir(parents=True, exist_ok=True)
    body = f"<h1>Recent campaign runs</h1>{_trend(frame)}"
    path.write_text(_page("Recent campaign runs", body), encoding="utf-8")
    return path


__all__ = ["GATE_ORDER", "CampaignView", "ModelSection", "ReportData", "render_report"]
