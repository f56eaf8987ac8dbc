"""CLI commands: validate a data directory against the data contract."""

from __future__ import annotations

from pathlib import Path

import typer
from rich.markup import escape
from rich.table import Table

from features.io import LoadResult
from propensity.progress import make_console

console = make_console()


def print_load_report(result: LoadResult) -> None:
    """A rich table of rows read and rejected per table and reason."""
    table = Table(title="Data contract check")
    for col in ("table", "rows", "rejected", "reason"):
        table.add_column(col, justify="right" if col in ("rows", "rejected") else "left")
    counts = result.rejected_counts
    for name, rows in result.rows.items():
        reasons = counts.get(name, {})
        if not reasons:
            table.add_row(name, f"{rows:,}", "0", "")
        for i, (reason, n) in enumerate(reasons.items()):
            table.add_row(name if i == 0 else "", f"{rows:,}" if i == 0 else "", f"{n:,}", reason)
    console.print(table)


def register(app: typer.Typer) -> None:
    """Add this module's commands to the app."""

    @app.command()
    def validate(
        data_dir: Path = typer.Argument(..., help="directory holding the contract tables"),
        strict: bool = typer.Option(False, "--strict", help="any rejected row is an error"),
        rejected_out: Path = typer.Option(
            Path("rejected"), "--rejected-out", help="where rejected rows are written"
        ),
        config: Path | None = typer.Option(None, "--config", help="propensity TOML config"),
    ) -> None:
        """Check a data directory against the data contract; quarantine bad rows."""
        from features.validate import coverage_warnings
        from propensity.config import load_config
        from propensity.data import load_data

        app_config = load_config(config)
        result = load_data(data_dir, app_config, rejected_out=rejected_out, strict=strict)
        print_load_report(result)
        names = [p.name for p in app_config.products]
        for warning in coverage_warnings(result.tables, app_config.features, names):
            console.print(f"[yellow]warning:[/] {escape(warning)}", highlight=False)
        if result.n_rejected:
            console.print(f"{result.n_rejected:,} rejected row(s) written to {rejected_out}/")
        else:
            console.print("[green]all rows passed the contract checks[/]")
