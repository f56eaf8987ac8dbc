"""CLI commands: `propensity init` (write the config file) and `propensity run` (the main job)."""

from __future__ import annotations

from pathlib import Path

import typer
from rich.table import Table

from propensity.config import load_config
from propensity.init_config import write_default_config
from propensity.options import parse_date
from propensity.progress import make_console, step_progress

console = make_console()


def quality_table(training: dict) -> Table:
    """Model quality per product (test month never seen in training), or why it was skipped."""
    table = Table(title="Model quality per product (test month)")
    for col in ("product", "ROC-AUC", "baseline AUC", "oracle AUC", "ECE", "version", "note"):
        table.add_column(col, no_wrap=col != "note", overflow="fold")
    for name, r in training.items():
        m = r.metrics

        def fmt(v: float | None) -> str:
            return "" if v is None else f"{v:.3f}"

        table.add_row(
            name,
            fmt(m.get("roc_auc")),
            fmt(r.baseline.get("roc_auc")),
            fmt(r.oracle_roc_auc),
            fmt(m.get("ece")),
            str(r.version or ""),
            "" if r.trained else r.message,
        )
    return table


def register(app: typer.Typer) -> None:
    """Add this module's commands to the app."""

    @app.command()
    def init(
        path: Path = typer.Option(Path("propensity.toml"), "--path", help="file to write"),
        force: bool = typer.Option(False, "--force", help="overwrite an existing file"),
    ) -> None:
        """Write a commented propensity.toml with every default."""
        write_default_config(path, force=force)
        console.print(f"wrote {path}")

    @app.command()
    def run(
        config_path: Path = typer.Option(None, "--config", help="propensity.toml (optional)"),
        work_dir: Path = typer.Option(None, "--work-dir", help="where everything is written"),
        data: Path = typer.Option(None, "--data", help="your data directory (default: synthetic)"),
        as_of: str = typer.Option(None, "--as-of", help="run date YYYY-MM-DD"),
        run_id: str = typer.Option(None, "--run-id", help="ledger run id"),
        replace: bool = typer.Option(None, "--replace/--no-replace", help="replace a run id"),
        promote: bool = typer.Option(None, "--promote/--no-promote", help="force champion"),
        retrain: bool = typer.Option(
            None, "--retrain/--no-retrain", help="train first, or score with the champions"
        ),
        customers: int = typer.Option(None, "--customers", help="synthetic bank size"),
        months: int = typer.Option(None, "--months", help="synthetic bank months"),
        seed: int = typer.Option(None, "--seed", help="synthetic bank seed"),
        ledger_url: str = typer.Option(None, "--ledger-url", help="SQLAlchemy URL of the ledger"),
        tracking_uri: str = typer.Option(None, "--tracking-uri", help="MLflow tracking URI"),
    ) -> None:
        """Validate, build features, train, score, select, and write ledger, files and report."""
        from propensity.job import run_job

        config = load_config(config_path).override(
            **{
                "work_dir": work_dir,
                "data.path": data,
                "run.as_of": as_of and parse_date(as_of, "--as-of"),
                "run.run_id": run_id,
                "run.replace": replace,
                "run.promote": promote,
                "run.retrain": retrain,
                "synthetic.customers": customers,
                "synthetic.months": months,
                "synthetic.seed": seed,
                "ledger.url": ledger_url,
                "mlflow.tracking_uri": tracking_uri,
            }
        )
        with step_progress(console, "starting") as step:
            result = run_job(config, step)
        console.print(quality_table(result.training))
        console.print(result.summary.rich_table())
        for note in result.summary.notes:
            console.print(f"note: {note}")
        table = Table(title="Where everything is", show_header=False)
        for name, value in (
            ("data", result.data_dir),
            ("rejected rows", result.work_dir / "rejected"),
            ("MLflow", result.tracking_uri),
            ("ledger", result.ledger_url),
            ("channel files", result.work_dir / "out" / result.run_id),
            ("report", result.report),
        ):
            if isinstance(value, Path) and not value.exists():
                continue  # never point at a directory that was not written
            table.add_row(name, str(value))
        console.print(table)
