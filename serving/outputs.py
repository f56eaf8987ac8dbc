"""What a run hands over: one CSV per channel for the channel systems, and the run summary.

Channel files are CSV (`<out>/<run_id>/<channel>.csv`; columns customer_id, campaign_id,
product, channel, propensity, reasons with the sentences joined by " | ") because every
mailing, SMS and dialler system reads CSV. They are written to a staging directory of this
process and renamed into place only after the ledger transaction committed (`serving.publish`).

Marketing opens these files in a spreadsheet, so any text cell starting with `=`, `+`, `-`,
`@`, a tab or a carriage return is prefixed with a single quote (OWASP CSV injection); the
customer ids of the bank's data are not otherwise restricted (`features.ids`).
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from datetime import date
from pathlib import Path
from typing import Any

import polars as pl
from rich.table import Table

from features.paths import new_staging_dir, remove_staging_dir, safe_path, writing
from features.schemas import CHANNELS
from serving.arbitration import CONTROL_DRAW_SCHEME
from serving.reasons import order_expr

REASON_SEPARATOR = " | "
CHANNEL_COLUMNS = ("customer_id", "campaign_id", "product", "channel", "propensity", "reasons")
FORMULA_START = r"^[=+\-@\t\r]"  # a spreadsheet reads a cell starting with these as a formula


@dataclass
class RunSummary:
    """Counts of one run: gates, outcomes per campaign/channel/reason, and the files written."""

    run_id: str
    as_of: date
    dry_run: bool
    config_hash: str
    model_versions: dict[str, str | None]
    gates: dict[str, int]  # customers removed before scoring, scores dropped, below threshold
    counts: pl.DataFrame  # campaign_id, channel, outcome, reason, n
    files: list[Path] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)  # products skipped, campaigns inactive, ...

    def n(self, reason: str) -> int:
        """(customer, campaign) pairs with this reason code (selected and control included)."""
        return int(self.counts.filter(pl.col("reason") == reason)["n"].sum())

    def to_json(self) -> dict[str, Any]:
        return {
            "run_id": self.run_id,
            "as_of": self.as_of.isoformat(),
            "dry_run": self.dry_run,
            "config_hash": self.config_hash,
            "model_versions": self.model_versions,
            "gates": self.gates,
            "counts": self.counts.to_dicts(),
            "files": [str(p) for p in self.files],
            "notes": self.notes,
            "control_draw": CONTROL_DRAW_SCHEME,
        }

    def rich_table(self) -> Table:
        table = Table(title=f"Selection run {self.run_id} as of {self.as_of}")
        for col in ("campaign", "channel", "outcome", "reason", "customers"):
            table.add_column(
                col, justify="right" if col == "customers" else "left", overflow="fold"
            )
        for gate, n in self.gates.items():
            table.add_row("(all)", "", "removed", gate, f"{n:,}")
        for row in self.counts.iter_rows(named=True):
            table.add_row(
                row["campaign_id"],
                row["channel"] or "",
                row["outcome"],
                row["reason"],
                f"{row['n']:,}",
            )
        return table


def count_outcomes(decisions: pl.DataFrame) -> pl.DataFrame:
    """Counts per campaign, channel, outcome and reason (stable order)."""
    return (
        decisions.group_by("campaign_id", "channel", "outcome", "reason")
        .agg(n=pl.len())
        .with_columns(order_expr("reason"))
        .sort("campaign_id", "_reason_order", "channel", nulls_last=True)
        .drop("_reason_order")
    )


def escape_cell(column: str) -> pl.Expr:
    """The text column with a leading quote where a spreadsheet would see a formula."""
    col = pl.col(column)
    return (
        pl.when(col.str.contains(FORMULA_START))
        .then(pl.lit("'") + col)
        .otherwise(col)
        .alias(column)
    )


def channel_frames(selected: pl.DataFrame) -> dict[str, pl.DataFrame]:
    """One frame per channel with the columns of the channel file, safe for a spreadsheet."""
    flat = selected.with_columns(
        reasons=pl.col("reasons").list.join(REASON_SEPARATOR).fill_null("")
    ).select(CHANNEL_COLUMNS)
    text = [c for c in CHANNEL_COLUMNS if flat.schema[c] == pl.String]
    flat = flat.sort("customer_id", "campaign_id").with_columns(escape_cell(c) for c in text)
    return {ch: flat.filter(pl.col("channel") == ch) for ch in CHANNELS}


def final_dir(out_dir: Path, run_id: str) -> Path:
    """`<out_dir>/<run_id>`, resolved and checked to lie inside `out_dir`."""
    return safe_path(out_dir, run_id)


def write_files(frames: dict[str, pl.DataFrame], summary_json: str, directory: Path) -> None:
    """The channel files and summary.json into `directory` (a staging directory)."""
    for channel, frame in frames.items():
        with writing(directory / f"{channel}.csv"):
            frame.write_csv(directory / f"{channel}.csv")
    with writing(directory / "summary.json"):
        (directory / "summary.json").write_text(summary_json, encoding="utf-8")


def write_staged(frames: dict[str, pl.DataFrame], summary: RunSummary, out_dir: Path) -> Path:
    """Write channel files and summary.json to a new staging directory next to the final one."""
    final = final_dir(out_dir, summary.run_id)
    staging = new_staging_dir(final.parent, summary.run_id)
    summary.files = [final / f"{ch}.csv" for ch in frames] + [final / "summary.json"]
    try:
        write_files(frames, json.dumps(summary.to_json(), indent=2), staging)
    except BaseException:
        remove_staging_dir(staging)
        raise
    return staging
