"""CLI commands: serving (score, select, explain), on the one config and the one engine.

Every command takes `--config propensity.toml` and `--work-dir`, which means the same in all
of them: the tracking store, the ledger, the channel files and the reports live under it.
"""

from __future__ import annotations

import json
from pathlib import Path

import polars as pl
import typer
from rich.table import Table

from propensity.config import AppConfig, load_config
from propensity.options import parse_date, split_names
from propensity.progress import make_console

console = make_console()


def app_config(
    config_path: Path | None,
    work_dir: Path | None,
    ledger_url: str | None = None,
    tracking_uri: str | None = None,
    campaigns: Path | None = None,
) -> AppConfig:
    """The one config file with the flags every serving command shares laid over it."""
    config = load_config(config_path).override(
        **{"work_dir": work_dir, "ledger.url": ledger_url, "mlflow.tracking_uri": tracking_uri}
    )
    return config.with_campaigns_file(campaigns)


def _print_notes(notes: list[str]) -> None:
    for note in notes:
        console.print(f"note: {note}")


def register(app: typer.Typer) -> None:
    """Add this module's commands to the app."""

    @app.command("score")
    def score_cmd(
        data_dir: Path = typer.Argument(..., help="directory holding the contract tables"),
        as_of: str = typer.Option(..., "--as-of", help="score as of this date (YYYY-MM-DD)"),
        out: Path = typer.Option(Path("scores.parquet"), "--out", help="long scores Parquet"),
        config_path: Path = typer.Option(None, "--config", help="propensity.toml (optional)"),
        work_dir: Path = typer.Option(None, "--work-dir", help="default: propensity-work"),
        alias: str = typer.Option("champion", "--alias", help="registry alias of the models"),
        products: str = typer.Option(
            None, "--products", help="comma-separated; default: every [[products]] entry"
        ),
        tracking_uri: str = typer.Option(None, "--tracking-uri", help="MLflow store"),
    ) -> None:
        """Score every consenting customer for each product (objectors are never profiled)."""
        from models.registry import resolve_tracking_uri
        from propensity.data import load_data
        from serving.pipeline import load_models, score_customers

        day = parse_date(as_of, "--as-of")
        config = app_config(config_path, work_dir, tracking_uri=tracking_uri)
        names = split_names(products) if products else [p.name for p in config.products]
        uri = resolve_tracking_uri(config.mlflow.tracking_uri, config.work_dir)
        models = load_models(names, alias, uri)
        tables = load_data(data_dir, config).tables
        scored = score_customers(tables, day, config.features, models.bundles)
        out.parent.mkdir(parents=True, exist_ok=True)
        scored.scores.write_parquet(out)
        _print_notes(list(models.notes))
        console.print(
            f"wrote {scored.scores.height:,} score(s) of {scored.features.height:,} consenting "
            f"customer(s) to {out} ({scored.gate.objected:,} objected and "
            f"{scored.gate.no_consent_row:,} without a consent row were not profiled)"
        )

    @app.command("select")
    def select_cmd(
        data_dir: Path = typer.Argument(..., help="directory holding the contract tables"),
        as_of: str = typer.Option(..., "--as-of", help="run date (YYYY-MM-DD)"),
        scores: Path = typer.Option(..., "--scores", help="scores Parquet from `propensity score`"),
        config_path: Path = typer.Option(None, "--config", help="propensity.toml (optional)"),
        campaigns: Path = typer.Option(
            None, "--campaigns", help="a file of [[campaigns]] replacing those of the config"
        ),
        ledger_url: str = typer.Option(None, "--ledger-url", help="default: SQLite in work dir"),
        run_id: str = typer.Option(None, "--run-id", help="default: run-<as-of>"),
        replace: bool = typer.Option(False, "--replace", help="overwrite a run with this id"),
        dry_run: bool = typer.Option(False, "--dry-run", help="no ledger write, no files"),
        work_dir: Path = typer.Option(None, "--work-dir", help="default: propensity-work"),
        alias: str = typer.Option("champion", "--alias", help="models used for the reasons"),
        tracking_uri: str = typer.Option(None, "--tracking-uri"),
        reasons: bool = typer.Option(True, "--reasons/--no-reasons", help="top reasons per offer"),
        as_json: bool = typer.Option(False, "--json", help="print the summary as JSON"),
    ) -> None:
        """Select whom to contact through which channel, record it in the ledger, report it."""
        from features.ids import validate_run_id
        from models.registry import resolve_tracking_uri
        from propensity.data import load_data
        from propensity.job import write_run_report
        from serving.pipeline import decide_run, default_run_id, read_scores

        if run_id is not None:
            validate_run_id(run_id)  # before any data is read
        day = parse_date(as_of, "--as-of")
        config = app_config(config_path, work_dir, ledger_url, tracking_uri, campaigns)
        score_frame = read_scores(scores)  # the inputs are checked before any store is opened
        table_data = load_data(data_dir, config).tables
        uri = resolve_tracking_uri(config.mlflow.tracking_uri, config.work_dir)
        result = decide_run(
            table_data,
            config.engine_config(uri, alias),
            as_of=day,
            run_id=run_id or default_run_id(day),
            scores=score_frame,
            dry_run=dry_run,
            replace=replace,
            reasons=reasons,
        )
        summary = result.summary
        report = None
        if not dry_run:
            report = write_run_report(
                config, summary, {}, source=str(data_dir), products=table_data.products
            )
        if as_json:
            payload = summary.to_json() | {"report": str(report) if report else None}
            console.print_json(json.dumps(payload))
            return
        console.print(summary.rich_table())
        _print_notes(summary.notes)
        if dry_run:
            console.print("dry run: nothing written (no ledger rows, no channel files, no report)")
            return
        if summary.files:
            console.print(f"channel files and summary.json in {summary.files[0].parent}")
        console.print(f"report: {report}")

    @app.command("explain")
    def explain_cmd(
        customer_id: str = typer.Argument(..., help="the customer"),
        config_path: Path = typer.Option(None, "--config", help="propensity.toml (optional)"),
        ledger_url: str = typer.Option(None, "--ledger-url"),
        work_dir: Path = typer.Option(None, "--work-dir", help="default: propensity-work"),
        as_json: bool = typer.Option(False, "--json", help="print the decisions as JSON"),
    ) -> None:
        """Show every decision and contact held about a customer (access request)."""
        from serving.access import customer_record

        config = app_config(config_path, work_dir, ledger_url)
        record = customer_record(customer_id, config.ledger.url, config.work_dir)
        rows = record.decisions
        if as_json:
            payload = {
                "customer_id": customer_id,
                "decisions": rows.to_dicts(),
                "contacts": record.contacts.to_dicts(),
            }
            console.print_json(json.dumps(payload, default=str))
            return
        if rows.is_empty():
            console.print(f"no decisions recorded for customer {customer_id}")
            _print_contacts(record.contacts, customer_id)
            return
        if not console.is_terminal:  # a log or a file: one complete line per field
            for r in rows.iter_rows(named=True):
                console.print(" ".join(f"{k}={v}" for k, v in r.items() if k != "reasons"))
                for line in (r["reasons"] or "").splitlines():
                    console.print(f"  why: {line}")
            _print_contacts(record.contacts, customer_id)
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
        _print_contacts(record.contacts, customer_id)


def _print_contacts(contacts: pl.DataFrame, customer_id: str) -> None:
    """Every contact held (made by runs and imported), as lines in a log or a table."""
    if not console.is_terminal:
        for r in contacts.iter_rows(named=True):
            console.print("contact " + " ".join(f"{k}={v}" for k, v in r.items()))
        return
    held = Table(title=f"Contacts held about customer {customer_id} (runs and imported)")
    for col in ("contacted_at", "source", "run", "campaign", "product", "channel", "outcome"):
        held.add_column(col, overflow="fold")
    for r in contacts.iter_rows(named=True):
        held.add_row(*(str(v) if v is not None else "" for v in r.values()))
    console.print(held)
