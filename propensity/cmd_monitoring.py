"""CLI commands of the closed loop: `outcomes import`, `uplift`, `simulate-responses`, `report`."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import typer
from rich.console import Console
from rich.table import Table

from propensity.config import AppConfig, load_config

console = Console()


def _config(config_path: Path | None, work_dir: Path | None) -> AppConfig:
    return load_config(config_path).override(work_dir=work_dir)


def _ledger(config: AppConfig, ledger_url: str | None) -> str:
    from serving.ledger import ledger_url as resolve

    return resolve(ledger_url or config.ledger.url, config.work_dir)


def _print_table(title: str, headers: list[str], rows: list[list[str]]) -> None:
    """A rich table in a terminal; plain complete tab-separated lines in a log file."""
    if not sys.stdout.isatty():
        print(title)
        for row in [headers, *rows]:
            print("\t".join(row))
        return
    table = Table(title=title)
    for col in headers:
        table.add_column(col)
    for row in rows:
        table.add_row(*row)
    console.print(table)


def _fmt_pct(v: float | None) -> str:
    return "–" if v is None else f"{v * 100:+.1f}%"


def register(app: typer.Typer) -> None:
    """Add this module's commands to the app."""
    outcomes = typer.Typer(help="Responses from the channels.", no_args_is_help=True)
    app.add_typer(outcomes, name="outcomes")

    @outcomes.command("import")
    def import_cmd(
        file: Path = typer.Argument(..., help="outcomes Parquet or CSV"),
        config_path: Path = typer.Option(None, "--config", help="propensity.toml"),
        work_dir: Path = typer.Option(None, "--work-dir", help="work directory (ledger)"),
        ledger_url: str = typer.Option(None, "--ledger-url", help="SQLAlchemy URL of the ledger"),
        rejected_out: Path = typer.Option(None, "--rejected-out", help="rejected rows go here"),
    ) -> None:
        """Record channel responses in the ledger (importing the same file again adds nothing)."""
        from monitoring.outcomes import import_outcomes

        config = _config(config_path, work_dir)
        out = rejected_out or config.work_dir / "rejected"
        result = import_outcomes(file, _ledger(config, ledger_url), out)
        console.print(
            f"outcomes: {result.rows:,} row(s) read, {result.added:,} added, "
            f"{result.already_present:,} already in the ledger, {result.rejected.height:,} rejected"
            + (f" {result.rejected_counts} -> {out}" if result.rejected.height else "")
        )

    @app.command("uplift")
    def uplift_cmd(
        config_path: Path = typer.Option(None, "--config", help="propensity.toml"),
        work_dir: Path = typer.Option(None, "--work-dir", help="work directory (ledger)"),
        data: Path = typer.Option(
            None, "--data", help="data directory whose products show openings"
        ),
        ledger_url: str = typer.Option(None, "--ledger-url", help="SQLAlchemy URL of the ledger"),
        as_json: bool = typer.Option(False, "--json", help="print JSON"),
    ) -> None:
        """Treated vs control conversion per campaign, channel and overall, with 95% intervals."""
        from propensity.loop import measure_uplift

        config = _config(config_path, work_dir)
        report, _ = measure_uplift(config, data, _ledger(config, ledger_url))
        if as_json:
            sys.stdout.write(json.dumps(report.to_json(), indent=2) + "\n")
            return
        groups = [
            *(("campaign " + k, v) for k, v in report.campaigns.items()),
            *(("channel " + k, v) for k, v in report.channels.items()),
        ]
        if report.overall is not None:
            groups.append(("overall", report.overall))
        if report.programme is not None:
            groups.append(("programme (vs global control)", report.programme))
        if not groups:
            print("no treated or control decisions in the ledger yet")
            return
        rows = [
            [
                name,
                f"{u.treated_n:,}",
                f"{u.control_n:,}",
                _fmt_pct(u.treated_rate)[1:],
                _fmt_pct(u.control_rate)[1:],
                _fmt_pct(u.uplift_rel),
                f"{_fmt_pct(u.ci_low)} to {_fmt_pct(u.ci_high)}",
                _fmt_pct(u.mde_rel),
                "final" if u.final else "provisional",
            ]
            for name, u in groups
        ]
        headers = [
            "group",
            "treated",
            "control",
            "treated rate",
            "control rate",
            "uplift",
            "95% interval",
            "detectable",
            "status",
        ]
        _print_table("Measured uplift (treated vs control)", headers, rows)

    @app.command("simulate-responses")
    def simulate_cmd(
        data_dir: Path = typer.Argument(..., help="a synthetic bank (with truth.parquet)"),
        run_dir: Path = typer.Option(..., "--run-dir", help="<work-dir>/out/<run-id> of a run"),
        days: int = typer.Option(90, "--days", help="days after the run to simulate"),
        true_uplift: str = typer.Option(
            "0.2", "--true-uplift", help="X, or product[:channel]=X,... (contact multiplies by 1+X)"
        ),
        seed: int = typer.Option(1, "--seed", help="random seed"),
        out: Path = typer.Option(..., "--out", help="new data directory"),
    ) -> None:
        """Write the data as it looks DAYS after a run, with a known effect of being contacted."""
        from synthbank.responses import parse_uplift, simulate_responses

        result = simulate_responses(
            data_dir, run_dir, days=days, true_uplift=parse_uplift(true_uplift), seed=seed, out=out
        )
        console.print(
            f"run {result.run_id} ({result.as_of}): {result.contacted:,} contacted, "
            f"{result.openings:,} new opening(s) in {days} days -> {out} "
            f"(outcomes.parquet, responses_truth.json)"
        )

    @app.command("report")
    def report_cmd(
        runs: int = typer.Option(6, "--runs", min=1, help="how many recent runs the trend shows"),
        config_path: Path = typer.Option(None, "--config", help="propensity.toml"),
        work_dir: Path = typer.Option(None, "--work-dir", help="work directory (ledger)"),
        data: Path = typer.Option(
            None, "--data", help="data directory whose products show openings"
        ),
        ledger_url: str = typer.Option(None, "--ledger-url", help="SQLAlchemy URL of the ledger"),
        out: Path = typer.Option(
            None, "--out", help="HTML file; default <work-dir>/reports/trend.html"
        ),
    ) -> None:
        """Contacts, conversions, uplift and drift over the last N runs (HTML and a table)."""
        from propensity.loop import trend
        from propensity.report import write_trend_report

        config = _config(config_path, work_dir)
        frame = trend(config, data, _ledger(config, ledger_url), runs)
        path = write_trend_report(frame, out or config.work_dir / "reports" / "trend.html")
        rows = [
            ["–" if v is None else f"{v:,.3f}" if isinstance(v, float) else str(v) for v in row]
            for row in frame.iter_rows()
        ]
        _print_table(f"Last {runs} run(s)", frame.columns, rows)
        print(f"report: {path}")
