"""CLI commands: features (build a feature table as of a date, or print the catalogue)."""

from __future__ import annotations

from datetime import date
from pathlib import Path

import typer
from rich.table import Table

from features.errors import ConfigError
from propensity.options import parse_date
from propensity.progress import make_console

console = make_console()


def print_catalogue(config_path: Path | None) -> None:
    """The feature catalogue as a rich table."""
    from features.catalogue import catalogue
    from propensity.config import load_config

    infos = catalogue(load_config(config_path).features)
    table = Table(title=f"Feature catalogue ({len(infos)} features)")
    table.add_column("name", style="bold")
    table.add_column("window", justify="right")
    table.add_column("meaning")
    for info in infos:
        table.add_row(info.name, f"{info.window}d" if info.window else "", info.meaning)
    console.print(table)


def write_features(data_dir: Path, as_of: date, out: Path, config_path: Path | None) -> None:
    """Load the data directory, drop the customers who may not be profiled (objected or no
    consent row), build the features as of `as_of` and write them to Parquet."""
    from features.consent import profilable
    from features.pipeline import build_features, excluded_counts
    from propensity.config import load_config
    from propensity.data import load_data

    app = load_config(config_path)
    config = app.features
    gate = profilable(load_data(Path(data_dir), app).tables)
    dropped = excluded_counts(gate.tables, as_of, config)
    frame = build_features(gate.tables, as_of, config).collect(engine="streaming")
    out.parent.mkdir(parents=True, exist_ok=True)
    frame.write_parquet(out)
    console.print(
        f"{frame.height:,} customers x {frame.width - 2} features as of {as_of} -> {out}",
        soft_wrap=True,
    )
    console.print(
        f"not profiled: {gate.objected:,} customers objected, {gate.no_consent_row:,} have no "
        f"consent row; excluded from every feature: {dropped['special']:,} special-category "
        f"and {dropped['eligibility_only']:,} eligibility-only (debt collection) transactions",
        soft_wrap=True,
    )


def register(app: typer.Typer) -> None:
    """Add this module's commands to the app."""

    @app.command()
    def features(
        data_dir: Path | None = typer.Argument(None, help="directory holding the contract tables"),
        as_of: str | None = typer.Option(None, "--as-of", help="feature date YYYY-MM-DD"),
        out: Path = typer.Option(Path("features.parquet"), "--out", help="output Parquet file"),
        catalogue: bool = typer.Option(False, "--catalogue", help="print the feature catalogue"),
        config: Path | None = typer.Option(None, "--config", help="propensity TOML config"),
    ) -> None:
        """Build customer features as of a date, or print the feature catalogue."""
        if catalogue:
            print_catalogue(config)
            return
        if data_dir is None or as_of is None:
            raise ConfigError("give DATA_DIR and --as-of YYYY-MM-DD (or --catalogue)")
        write_features(data_dir, parse_date(as_of, "--as-of"), out, config)
