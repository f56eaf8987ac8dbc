"""Train from a data directory (what `propensity train` calls) and write the metrics file."""

from __future__ import annotations

import json
import logging
import math
from datetime import date
from pathlib import Path
from typing import Any

import polars as pl

from features.config import FeatureConfig, InputOptions
from features.errors import ConfigError
from features.io import load_tables
from models.products import DEFAULT_PRODUCT_SPECS, ProductSpec
from training.config import TrainingConfig
from training.train import ProductResult, Progress, train_products

log = logging.getLogger(__name__)

TRUTH_FILE = "truth.parquet"


def read_truth(data_dir: Path) -> pl.LazyFrame | None:
    """The simulator's true monthly probabilities, when the data dir has them."""
    path = Path(data_dir) / TRUTH_FILE
    return pl.scan_parquet(path) if path.exists() else None


def train_from_dir(
    data_dir: Path,
    config: TrainingConfig,
    *,
    work_dir: Path,
    products: list[str] | None = None,
    specs: tuple[ProductSpec, ...] = DEFAULT_PRODUCT_SPECS,
    tracking_uri: str | None = None,
    promote: bool = False,
    feature_config: FeatureConfig | None = None,
    progress: Progress | None = None,
    as_of: date | None = None,
    input_options: InputOptions | None = None,
    objections: pl.DataFrame | None = None,
) -> dict[str, ProductResult]:
    """Load and validate the tables, then train the configured products (`specs`, the
    `[[products]]` list), or the subset named in `products`, as known at `as_of`.
    `objections`: the objection register (`features.io.load_tables`)."""
    tables = load_tables(Path(data_dir), options=input_options, objections=objections).tables
    return train_products(
        tables,
        config,
        select_specs(specs, products),
        work_dir,
        tracking_uri,
        truth=read_truth(data_dir),
        progress=progress,
        promote=promote,
        feature_config=feature_config,
        as_of=as_of,
        configured=tuple(s.name for s in specs),
    )


def select_specs(specs: tuple[ProductSpec, ...], names: list[str] | None) -> list[ProductSpec]:
    """The configured specs, or those named by `--products` (each must be configured)."""
    if names is None:
        return list(specs)
    known = {s.name: s for s in specs}
    unknown = [n for n in names if n not in known]
    if unknown:
        raise ConfigError(
            f"--products: {', '.join(unknown)} not in the configured products "
            f"({', '.join(known)}); add a [[products]] entry, e.g. "
            f'[[products]] name = "{unknown[0]}" credit = false'
        )
    return [known[n] for n in names]


def _clean(value: Any) -> Any:
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return value


def write_metrics(results: dict[str, ProductResult], path: Path) -> Path:
    """`{product: {roc_auc, pr_auc, lift_at_10pct, brier, ece, n_train, n_test, n_pos_test,
    baseline_roc_auc, oracle_roc_auc, model_version, ...}}` as JSON (NaN written as null)."""
    data = {p: {k: _clean(v) for k, v in r.summary().items()} for p, r in results.items()}
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(data, indent=2) + "\n")
    return path
