"""The HTML report is one self-contained file: every plot is embedded as a PNG data URI and
nothing is fetched from elsewhere."""

from __future__ import annotations

import base64
from datetime import date
from html.parser import HTMLParser
from pathlib import Path

import polars as pl
from matplotlib.figure import Figure

from propensity.report import ModelSection, ReportData, write_report

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


class Collect(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.images: list[str] = []
        self.links: list[str] = []
        self.text: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        a = dict(attrs)
        if tag == "img":
            self.images.append(a.get("src") or "")
        if tag in ("script", "link") or (
            tag == "img" and not (a.get("src") or "").startswith("data:")
        ):
            self.links.append(tag)

    def handle_data(self, data: str) -> None:
        self.text.append(data)


def plot(path: Path) -> Path:
    fig = Figure(figsize=(2, 2))
    fig.subplots().plot([0, 1], [0, 1])
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path)
    return path


def test_report_embeds_every_plot(tmp_path: Path) -> None:
    plots = {k: plot(tmp_path / f"{k}.png") for k in ("roc", "gain", "calibration", "importance")}
    models = [
        ModelSection(
            product=p,
            metrics={
                "roc_auc": 0.81,
                "baseline_roc_auc": 0.74,
                "oracle_roc_auc": 0.83,
                "n_test": 1200,
            },
            plots=plots,
            drivers=[("days_since_first_child_benefit", "days since the first child benefit")],
        )
        for p in ("savings", "child_savings")
    ]
    funnel = pl.DataFrame(
        {
            "campaign_id": ["c-save", "c-save", "c-save", "c-child", "c-child"],
            "gate": ["objected", "holds_product", "selected", "objected", "selected"],
            "count": [40, 12, 300, 40, 25],
        }
    )
    selection = pl.DataFrame(
        {
            "campaign_id": ["c-save"],
            "channel": ["email"],
            "selected": [300],
            "expected_acceptances": [21.5],
            "expected_value_eur": [3225.0],
        }
    )
    data = ReportData("run-1", date(2026, 11, 1), "synthetic", models, funnel, selection, ["ok"])
    path = write_report(data, tmp_path / "out" / "report.html")
    parser = Collect()
    parser.feed(path.read_text())
    assert parser.links == []  # nothing external
    assert len(parser.images) == 2 * 4 + 2  # four plots per product, one funnel per campaign
    for src in parser.images:
        assert src.startswith("data:image/png;base64,")
        assert base64.b64decode(src.split(",", 1)[1]).startswith(PNG_MAGIC)
    text = " ".join(parser.text)
    for expected in ("child_savings", "c-child", "holds_product", "3,225", "0.810", "0.740"):
        assert expected in text
