"""CLI command: `propensity publish RUN_ID` puts a committed run's channel files in place.

A run killed between its ledger commit and the rename of its files is committed but not
published; this command (or the next selection, automatically) rebuilds the files from the
ledger's decisions, so no kill leaves a run half done. Publishing twice changes nothing.
"""

from __future__ import annotations

from pathlib import Path

import typer
from rich.console import Console

console = Console()


def register(app: typer.Typer) -> None:
    """Add this module's commands to the app."""

    @app.command("publish")
    def publish_cmd(
        run_id: str = typer.Argument(..., help="the run to publish"),
        config_path: Path = typer.Option(None, "--config", help="propensity.toml (optional)"),
        work_dir: Path = typer.Option(None, "--work-dir", help="default: propensity-work"),
        ledger_url: str = typer.Option(None, "--ledger-url", help="default: SQLite in work dir"),
        out: Path = typer.Option(
            None, "--out", help="where a run without a recorded directory goes; <work-dir>/out"
        ),
    ) -> None:
        """Publish a run that was committed to the ledger but whose files were never written."""
        from features.ids import validate_run_id
        from propensity.config import load_config
        from serving import ledger as lg
        from serving.ledger_lock import check_reachable
        from serving.publish import publish_run

        validate_run_id(run_id, "RUN_ID")
        config = load_config(config_path).override(
            **{"work_dir": work_dir, "ledger.url": ledger_url}
        )
        serving = config.serving_config()
        url = lg.ledger_url(serving.ledger_url, config.work_dir)
        engine = lg.make_engine(url, serving.lock_timeout_seconds)
        try:
            check_reachable(engine)
            with lg.ledger_errors(engine):
                where, now = publish_run(
                    engine, run_id, out or config.work_dir / "out", serving.lock_timeout_seconds
                )
        finally:
            engine.dispose()
        state = "published" if now else "was already published"
        console.print(f"run {run_id} {state}: channel files and summary.json in {where}")
