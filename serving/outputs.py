"""What a run hands over: one CSV per channel for the channel systems, and the run summary.

Channel files are CSV (`<out>/<run_id>/<channel>.csv`; columns customer_id, campaign_id,
product, channel, propensity, reasons with the sentences joined by " | ") because every
mailing, SMS and dialler system reads CSV. They are written to a temporary directory and
moved into place only after the ledger transaction committed.
"""

from __future__ import annotations

import json
import shutil
from dataclasses import dataclass, field
from datetime import date
from pathlib import Path
from typing import Any

import polars as pl
from rich.table import Table

from features.schemas import CHANNELS
from serving.arbitration import CONTROL_DRAW_SCHEME
from serving.reasons import order_expr

REASON_SEPARATOR = " | "
CHANNEL_COLUMNS = ("customer_id", "campaign_id", "product", "channel", "propensity", "reasons")


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


def channel_frames(selected: pl.DataFrame) -> dict[str, pl.DataFrame]:
    """One frame per channel with the columns of the channel file."""
    flat = selected.with_columns(
        reasons=pl.col("reasons").list.join(REASON_SEPARATOR).fill_null("")
    ).select(CHANNEL_COLUMNS)
    return {ch: flat.filter(pl.col("channel") == ch).sort("customer_id") for ch in CHANNELS}


def write_staged(frames: dict[str, pl.DataFrame], summary: RunSummary, out_dir: Path) -> Path:
    """Write channel files and summary.json to a staging directory next to the final one."""
    staging = out_dir / f".{summary.run_id}.staging"
    shutil.rmtree(staging, ignore_errors=True)
    staging.mkdir(parents=True)
    for channel, frame in frames.items():
        frame.write_csv(staging / f"{channel}.csv")
    final = out_dir / summary.run_id
    summary.files = [final / f"{ch}.csv" for ch in frames] + [final / "summary.json"]
    (staging / "summary.json").write_text(json.dumps(summary.to_json(), indent=2))
    return staging


def publish(staging: Path, out_dir: Path, run_id: str) -> Path:
    """Move the staged files into `<out_dir>/<run_id>` (replacing an earlier run's files)."""
    final = out_dir / run_id
    shutil.rmtree(final, ignore_errors=True)
    staging.rename(final)
    return final
