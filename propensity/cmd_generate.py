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
        customers: int | None = typer.Option(
            None, "--customers", help="number of customers (dutch 10,000; foreign 3,000)"
        ),
        months: int | None = typer.Option(
            None, "--months", help="simulated months before --end (dutch 24; foreign 15)"
        ),
        seed: int = typer.Option(0, "--seed", help="random seed: same seed, same bytes"),
        out: Path = typer.Option(..., "--out", help="directory to write the tables to"),
        end: str | None = typer.Option(
            None,
            "--end",
            help="first day after the period, a month start (dutch 2026-11-01; foreign 2025-07-01)",
        ),
        profile: str = typer.Option(
            "dutch",
            "--profile",
            help="dutch, or foreign: GBP, no mcc/location/country, English descriptions, "
            "products deposit, travel_insurance, credit_card, loan, zoned timestamps",
        ),
    ) -> None:
        """Write a synthetic bank (Dutch by default): the five contract tables plus
        truth.parquet."""
        from synthbank import generate as run
        from synthbank.profiles import get_profile

        chosen = get_profile(profile)
        customers = chosen.customers if customers is None else customers
        months = chosen.months if months is None else months
        end_date = chosen.end if end is None else parse_date(end, "--end")
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

            result = run(customers, months, seed, out, end=end_date, progress=step, profile=profile)
        table = Table(title=f"synthetic bank in {result.out}")
        table.add_column("table")
        table.add_column("rows", justify="right")
        for name, rows in result.rows.items():
            table.add_row(name, f"{rows:,}")
        console.print(table)
