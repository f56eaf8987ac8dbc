"""CLI commands: serving (score, select, explain)."""

from __future__ import annotations

import json
from datetime import date
from pathlib import Path

import typer
from rich.console import Console
from rich.table import Table

from features.schemas import DEFAULT_PRODUCTS
from propensity.options import split_names

console = Console()


def _date(value: str) -> date:
    try:
        return date.fromisoformat(value)
    except ValueError as exc:
        raise typer.BadParameter(f"not a date (YYYY-MM-DD): {value}") from exc


def register(app: typer.Typer) -> None:
    """Add this module's commands to the app."""

    @app.command("score")
    def score_cmd(
        data_dir: Path = typer.Argument(..., help="directory holding the contract tables"),
        as_of: str = typer.Option(..., "--as-of", help="score as of this date (YYYY-MM-DD)"),
        out: Path = typer.Option(Path("scores.parquet"), "--out", help="long scores Parquet"),
        alias: str = typer.Option("champion", "--alias", help="registry alias of the models"),
        products: str = typer.Option(
            ",".join(DEFAULT_PRODUCTS), "--products", help="comma-separated"
        ),
        tracking_uri: str | None = typer.Option(None, "--tracking-uri", help="MLflow store"),
    ) -> None:
        """Score every consenting customer for each product (objectors are never profiled)."""
        from serving.jobs import score_job

        names = split_names(products)
        scores = score_job(data_dir, _date(as_of), out, names, alias, tracking_uri)
        console.print(f"wrote {scores.height:,} score(s) to {out}")

    @app.command("select")
    def select_cmd(
        data_dir: Path = typer.Argument(..., help="directory holding the contract tables"),
        as_of: str = typer.Option(..., "--as-of", help="run date (YYYY-MM-DD)"),
        scores: Path = typer.Option(..., "--scores", help="scores Parquet from `propensity score`"),
        campaigns: Path | None = typer.Option(None, "--campaigns", help="campaigns TOML"),
        ledger_url: str | None = typer.Option(
            None, "--ledger-url", help="default: SQLite in work dir"
        ),
        run_id: str | None = typer.Option(None, "--run-id"),
        replace: bool = typer.Option(False, "--replace", help="overwrite a run with this id"),
        dry_run: bool = typer.Option(False, "--dry-run", help="no ledger write, no channel files"),
        out: Path | None = typer.Option(
            None, "--out", help="channel files go here; default: <work-dir>/out"
        ),
        work_dir: Path = typer.Option(Path("propensity-work"), "--work-dir"),
        alias: str = typer.Option("champion", "--alias", help="models used for the reasons"),
        tracking_uri: str | None = typer.Option(None, "--tracking-uri"),
        reasons: bool = typer.Option(
            True, "--reasons/--no-reasons", help="top-3 reasons per offer"
        ),
        as_json: bool = typer.Option(False, "--json", help="print the summary as JSON"),
    ) -> None:
        """Select whom to contact through which channel, and record it in the ledger."""
        from features.ids import validate_run_id
        from serving.jobs import select_job

        if run_id is not None:
            validate_run_id(run_id)  # before any data is read

        summary = select_job(
            data_dir,
            _date(as_of),
            scores,
            campaigns_path=campaigns,
            ledger_url=ledger_url,
            run_id=run_id,
            replace=replace,
            dry_run=dry_run,
            out=out or work_dir / "out",
            work_dir=work_dir,
            alias=alias,
            tracking_uri=tracking_uri,
            reasons=reasons,
        )
        if as_json:
            console.print_json(json.dumps(summary.to_json()))
        else:
            console.print(summary.rich_table())
            if summary.files:
                console.print(f"channel files and summary.json in {summary.files[0].parent}")

    @app.command("explain")
    def explain_cmd(
        customer_id: str = typer.Argument(..., help="the customer"),
        ledger_url: str | None = typer.Option(None, "--ledger-url"),
        work_dir: Path = typer.Option(Path("propensity-work"), "--work-dir"),
        as_json: bool = typer.Option(False, "--json", help="print the decisions as JSON"),
    ) -> None:
        """Show every decision and contact held about a customer (access request)."""
        from serving.access import customer_record

        record = customer_record(customer_id, ledger_url, work_dir)
        rows = record.decisions
        if as_json:
            payload = {
                "customer_id": customer_id,
                "decisions": rows.to_dicts(),
                "contacts": record.contacts.to_dicts(),
            }
            console.print_json(json.dumps(payload, default=str))
            return
        table = Table(title=f"Decisions about customer {customer_id}")
        for col in ("as_of", "run", "campaign", "channel", "outcome", "reason", "score", "why"):
            table.add_column(col, overflow="fold")  # an access request needs every word
        for r in rows.iter_rows(named=True):
            table.add_row(
                str(r["as_of"]),
                r["run_id"],
                r["campaign_id"],
                r["channel"] or "",
                r["outcome"],
                r["reason"],
                f"{r['propensity']:.3f}",
                r["reasons"] or "",
            )
        console.print(table)
        if rows.is_empty():
            console.print("no decisions recorded for this customer")
        held = Table(title=f"Contacts held about customer {customer_id} (runs and imported)")
        for col in ("contacted_at", "source", "run", "campaign", "product", "channel", "outcome"):
            held.add_column(col, overflow="fold")
        for r in record.contacts.iter_rows(named=True):
            held.add_row(*(str(v) if v is not None else "" for v in r.values()))
        console.print(held)
