"""Population stability (PSI) of every model feature and of each product's score.

The reference is taken at training time from the training snapshots and saved with the model
version as the MLflow artifact `drift_reference.json` (`reference_profile`). Bins: the
reference's deciles (`REFERENCE_BINS` quantiles, duplicates merged, so a flag has two bins), each
bin closed on the right, (-inf, q1], (q1, q2], ..., (qk, inf), plus one bin for nulls. PSI =
sum over bins of (current - reference) * ln(current / reference), shares floored at 1e-4 so
an empty bin stays finite. Rule of thumb (config): below 0.10 stable, 0.10-0.25 warning,
0.25 and above alert. Pure polars.
"""

from __future__ import annotations

import json
import math
from typing import Any

import polars as pl

from models.drift_reference import (  # noqa: F401  (re-exported)
    NUMERIC,
    REFERENCE_ARTIFACT,
    REFERENCE_BINS,
    SCORE,
    bin_expr,
    bin_shares,
    reference_profile,
)

_FLOOR = 1e-4


def psi(reference: dict[int, float], current: dict[int, float]) -> float:
    """PSI between two bin -> share maps (missing bins count as empty)."""
    total = 0.0
    for b in set(reference) | set(current):
        e = max(reference.get(b, 0.0), _FLOOR)
        a = max(current.get(b, 0.0), _FLOOR)
        total += (a - e) * math.log(a / e)
    return total


def level(value: float, warn: float, alert: float) -> str:
    return "alert" if value >= alert else "warn" if value >= warn else "ok"


def level_expr(psi_col: str, warn: float, alert: float) -> pl.Expr:
    """`level` as a polars expression."""
    x = pl.col(psi_col)
    return (
        pl.when(x >= alert)
        .then(pl.lit("alert"))
        .when(x >= warn)
        .then(pl.lit("warn"))
        .otherwise(pl.lit("ok"))
    )


def compare(
    reference: dict[str, Any], features: pl.DataFrame, scores: pl.Series | None = None
) -> pl.DataFrame:
    """PSI per column of the reference present now: name, kind (feature | score), psi."""
    cols = reference["columns"]
    frame = features.select(c for c in cols if c in features.columns and c != SCORE)
    if scores is not None and SCORE in cols:
        frame = frame.with_columns(scores.cast(pl.Float64).alias(SCORE))
    edges = {c: [float(e) for e in cols[c]["edges"]] for c in frame.columns}
    now = bin_shares(frame, edges)
    rows = [
        (
            c,
            SCORE if c == SCORE else "feature",
            psi({int(b): s for b, s in cols[c]["shares"].items()}, now[c]),
        )
        for c in frame.columns
    ]
    return pl.DataFrame(
        rows, schema={"name": pl.String(), "kind": pl.String(), "psi": pl.Float64()}, orient="row"
    ).sort("psi", descending=True)


def load_reference(product: str, alias: str, tracking_uri: str) -> dict[str, Any] | None:
    """The drift reference logged with the model version under `alias`; None if absent."""
    from mlflow import MlflowClient
    from mlflow.exceptions import MlflowException

    from models.registry import model_name, quiet_mlflow

    quiet_mlflow()
    client = MlflowClient(tracking_uri=tracking_uri, registry_uri=tracking_uri)
    try:
        version = client.get_model_version_by_alias(model_name(product), alias)
        path = client.download_artifacts(version.run_id, REFERENCE_ARTIFACT)
    except (MlflowException, OSError):
        return None
    with open(path, encoding="utf-8") as fh:
        return json.load(fh)
