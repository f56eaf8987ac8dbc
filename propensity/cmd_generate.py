"""CLI commands: generate (a synthetic bank with known ground truth)."""

from __future__ import annotations

from pathlib import Path

import typer
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from propensity.options import parse_date
from propensity.progress import make_console

console = make_console()


def register(app: typer.Typer) -> None:
    """Add this module's commands to the app."""

    @app.command("generate")
    def generate(
        customers: int = typer.Option(10_000, "--customers", help="number of customers"),
        months: int = typer.Option(24, "--months", help="simulated months before --end"),
        seed: int = typer.Option(0, "--seed", help="random seed: same seed, same bytes"),
        out: Path = typer.Option(..., "--out", help="directory to write the tables to"),
        end: str = typer.Option(
            "2026-11-01", "--end", help="first day after the period (a month start)"
        ),
    ) -> None:
        """Write a synthetic Dutch bank: the five contract tables plus truth.parquet."""
        from synthbank import generate as run

        end_date = parse_date(end, "--end")
        with Progress(
            TextColumn("generating customer chunks"),
            BarColumn(),
            MofNCompleteColumn(),
            TimeElapsedColumn(),
            console=console,
        ) as bar:
            task = bar.add_task("chunks", total=None)

            def step(done: int, total: int) -> None:
                bar.update(task, completed=done, total=total)

            result = run(customers, months, seed, out, end=end_date, progress=step)
        table = Table(title=f"synthetic bank in {result.out}")
        table.add_column("table")
        table.add_column("rows", justify="right")
        for name, rows in result.rows.items():
            table.add_row(name, f"{rows:,}")
        console.print(table)
