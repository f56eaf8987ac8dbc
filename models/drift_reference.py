"""The training distribution of a model's features and score, saved with the model version.

`training` logs it as the MLflow artifact `drift_reference.json` when a model is registered;
`monitoring.drift` compares each run with it (PSI). It lives in `models/` because both sides
need it and `training` never imports `monitoring` (architecture: imports point one way).
Bins: the reference's deciles (`REFERENCE_BINS` quantiles, duplicates merged, so a flag has
two bins), each closed on the right, plus one bin for nulls.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import polars as pl

REFERENCE_ARTIFACT = "drift_reference.json"
REFERENCE_BINS = 10  # deciles; fixed when the model is trained, stored in the reference
SCORE = "score"
NUMERIC = (pl.Boolean,)


def bin_expr(name: str, edges: list[float]) -> pl.Expr:
    """Bin number 0..len(edges) (right-closed), -1 for null/NaN."""
    x = pl.col(name).cast(pl.Float64)
    above = pl.sum_horizontal([(x > e).cast(pl.Int32) for e in edges]) if edges else pl.lit(0)
    return pl.when(x.is_null() | x.is_nan()).then(pl.lit(-1)).otherwise(above).alias(name)


def bin_shares(frame: pl.DataFrame, edges: dict[str, list[float]]) -> dict[str, dict[int, float]]:
    """Share of rows per bin per column (bin -1: null or NaN), the bins of `bin_expr`: a value's
    bin is the number of edges below it, so a binary search in the sorted edges finds it
    (numpy, one column at a time: no long unpivoted frame of every column's bins)."""
    if frame.height == 0:
        return {c: {} for c in edges}
    per_row = 1.0 / frame.height  # share = count x (1 / rows): the bits polars' division gave
    out: dict[str, dict[int, float]] = {}
    for name, cuts in edges.items():
        x = frame[name].cast(pl.Float64).to_numpy()  # null -> NaN
        missing = np.isnan(x)
        ordered = np.sort(np.asarray(cuts, dtype=np.float64))
        counts = np.bincount(np.searchsorted(ordered, x[~missing], side="left"))
        shares = {b: k * per_row for b, k in enumerate(counts.tolist()) if k}
        if missing.any():
            shares[-1] = int(missing.sum()) * per_row
        out[name] = shares
    return out


def decile_edges(frame: pl.DataFrame, bins: int) -> dict[str, list[float]]:
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
    edges = decile_edges(frame, bins)
    shares = bin_shares(frame, edges)
    return {
        "version": 1,
        "bins": bins,
        "rows": frame.height,
        "columns": {
            c: {"edges": edges[c], "shares": {str(b): s for b, s in shares[c].items()}}
            for c in frame.columns
        },
    }
