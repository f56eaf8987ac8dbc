"""CLI command: train (one calibrated LightGBM model per product, registered in MLflow)."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

import typer
from rich.markup import escape
from rich.table import Table

from propensity.options import parse_date, split_names
from propensity.progress import make_console, step_progress

if TYPE_CHECKING:
    from training.train import ProductResult

console = make_console()
COLUMNS = {
    "roc_auc": "AUC",
    "baseline_roc_auc": "base AUC",
    "oracle_roc_auc": "oracle",
    "pr_auc": "PR-AUC",
    "lift_at_10pct": "lift@10%",
    "brier": "Brier",
    "ece": "ECE",
}


def results_table(results: dict[str, ProductResult]) -> Table:
    """One row per product: test metrics, sizes, registry version (* = champion)."""
    table = Table(title="Test-snapshot metrics")
    table.add_column("product", style="bold")
    for header in (*COLUMNS.values(), "n_test", "pos"):
        table.add_column(header, justify="right")
    table.add_column("model")
    for product, result in results.items():
        s = result.summary()
        cells = [f"{s[c]:.3f}" if isinstance(s[c], float) else "-" for c in COLUMNS]
        sizes = [f"{s[c]:,}" if s[c] is not None else "-" for c in ("n_test", "n_pos_test")]
        model = "skipped"
        if result.trained:
            model = f"v{result.version}" + ("*" if result.promoted else "")
        table.add_row(product, *cells, *sizes, model)
    return table


def plan_table(results: dict[str, ProductResult]) -> Table | None:
    """The calendar: one row per snapshot date (its role), positives per product."""
    plan = next((r.plan for r in results.values() if r.plan is not None), None)
    if plan is None:
        return None
    s = plan.snapshots
    table = Table(title="Training plan: positives per snapshot", caption="\n".join(plan.lines()))
    table.add_column("snapshot")
    table.add_column("role")
    shown = [p for p, r in results.items() if r.positives]
    for product in shown:
        table.add_column(product, justify="right")
    roles = [(d, "train") for d in s.train] + [(s.validation, "validation"), (s.test, "test")]
    for day, role in roles:
        cells = [str(results[p].positives.get(day, 0)) for p in shown]
        table.add_row(day.isoformat(), role, *cells)
    return table


def run_train(
    data_dir: Path,
    *,
    products: str | None,
    horizon_days: int | None,
    test_as_of: str | None,
    work_dir: Path | None,
    metrics_out: Path | None,
    promote: bool,
    tracking_uri: str | None,
    config_path: Path | None,
    as_of: str | None = None,
) -> dict[str, ProductResult]:
    """Load the config, apply the flags, train with a progress bar, print and write metrics."""
    from propensity.config import load_config
    from propensity.data import objection_register
    from training.run import train_from_dir, write_metrics

    app = load_config(config_path).override(
        **{
            "work_dir": work_dir,
            "training.horizon_days": horizon_days,
            "training.test_as_of": test_as_of and parse_date(test_as_of, "--test-as-of"),
            "mlflow.tracking_uri": tracking_uri,
        }
    )
    names = split_names(products) if products else None
    as_of_date = as_of and parse_date(as_of, "--as-of")
    with step_progress(console, "loading the tables") as step:
        results = train_from_dir(
            data_dir,
            app.training,
            work_dir=app.work_dir,
            products=names,
            specs=app.products,
            tracking_uri=app.mlflow.tracking_uri,
            promote=promote,
            feature_config=app.features,
            progress=step,
            as_of=as_of_date,
            input_options=app.data,
            objections=objection_register(app),
        )
    plan = plan_table(results)
    if plan is not None:
        console.print(plan)
    console.print(results_table(results))
    for product, result in results.items():
        if not result.trained:
            console.print(f"[yellow]{product}[/]: {escape(result.message)}")
    if metrics_out is not None:
        console.print(f"metrics written to {write_metrics(results, metrics_out)}")
    return results


def register(app: typer.Typer) -> None:
    """Add this module's commands to the app."""

    @app.command("train")
    def train(
        data_dir: Path = typer.Argument(..., help="directory holding the contract tables"),
        products: str | None = typer.Option(
            None,
            "--products",
            help="comma-separated subset of the configured [[products]]; default: all of them",
        ),
        horizon_days: int | None = typer.Option(
            None, "--horizon-days", help="label window (default 90)"
        ),
        test_as_of: str | None = typer.Option(
            None, "--test-as-of", help="test snapshot YYYY-MM-DD; default: latest complete horizon"
        ),
        work_dir: Path | None = typer.Option(
            None, "--work-dir", help="outputs and the MLflow store"
        ),
        metrics_out: Path | None = typer.Option(
            None, "--metrics-out", help="write metrics JSON here"
        ),
        promote: bool = typer.Option(
            False, "--promote", help="make the new models champion regardless"
        ),
        tracking_uri: str | None = typer.Option(
            None, "--tracking-uri", help="MLflow tracking URI; default: SQLite in the work dir"
        ),
        config: Path | None = typer.Option(None, "--config", help="propensity TOML config"),
        as_of: str | None = typer.Option(
            None,
            "--as-of",
            help="train as of YYYY-MM-DD: only data known before it; no label reaches past it",
        ),
    ) -> None:
        """Train, calibrate, evaluate and register one propensity model per product."""
        run_train(
            data_dir,
            products=products,
            horizon_days=horizon_days,
            test_as_of=test_as_of,
            work_dir=work_dir,
            metrics_out=metrics_out,
            promote=promote,
            tracking_uri=tracking_uri,
            config_path=config,
            as_of=as_of,
        )
