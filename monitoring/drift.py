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

import numpy as np
import polars as pl

REFERENCE_ARTIFACT = "drift_reference.json"
REFERENCE_BINS = 10  # deciles; fixed when the model is trained, stored in the reference
SCORE = "score"
_FLOOR = 1e-4
NUMERIC = (pl.Boolean,)


def _bin_expr(name: str, edges: list[float]) -> pl.Expr:
    """Bin number 0..len(edges) (right-closed), -1 for null/NaN."""
    x = pl.col(name).cast(pl.Float64)
    above = pl.sum_horizontal([(x > e).cast(pl.Int32) for e in edges]) if edges else pl.lit(0)
    return pl.when(x.is_null() | x.is_nan()).then(pl.lit(-1)).otherwise(above).alias(name)


def _shares(frame: pl.DataFrame, edges: dict[str, list[float]]) -> dict[str, dict[int, float]]:
    """Share of rows per bin per column (bin -1: null)."""
    if frame.height == 0:
        return {c: {} for c in edges}
    binned = frame.select(_bin_expr(c, e) for c, e in edges.items())
    counts = (
        binned.unpivot(variable_name="name", value_name="bin")
        .group_by("name", "bin")
        .len()
        .with_columns(share=pl.col("len") / frame.height)
    )
    out: dict[str, dict[int, float]] = {c: {} for c in edges}
    for name, b, share in counts.select("name", "bin", "share").iter_rows():
        out[name][int(b)] = float(share)
    return out


def _edges(frame: pl.DataFrame, bins: int) -> dict[str, list[float]]:
    qs = [i / bins for i in range(1, bins)]
    numeric = frame.select(pl.all().cast(pl.Float64).fill_nan(None))
    quant = numeric.select(
        pl.concat_list([pl.col(c).quantile(q, "linear") for q in qs]).alias(c)
        for c in numeric.columns
    ).row(0, named=True)
    return {
        c: sorted({float(v) for v in (vals or []) if v is not None}) for c, vals in quant.items()
    }


def reference_profile(
    features: pl.DataFrame,
    scores: np.ndarray | pl.Series | None = None,
    bins: int = REFERENCE_BINS,
    max_rows: int = 200_000,
) -> dict[str, Any]:
    """The training distribution of each feature (and of the model's score): edges and shares.

    More than `max_rows` rows are sampled (seeded): deciles need no more, and training stays fast.
    """
    frame = features.select(c for c, t in features.schema.items() if t.is_numeric() or t in NUMERIC)
    if scores is not None:
        frame = frame.with_columns(pl.Series(SCORE, np.asarray(scores, dtype=np.float64)))
    if frame.height > max_rows:
        frame = frame.sample(max_rows, seed=0)
    edges = _edges(frame, bins)
    shares = _shares(frame, edges)
    return {
        "version": 1,
        "bins": bins,
        "rows": frame.height,
        "columns": {
            c: {"edges": edges[c], "shares": {str(b): s for b, s in shares[c].items()}}
            for c in frame.columns
        },
    }


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
    now = _shares(frame, edges)
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
