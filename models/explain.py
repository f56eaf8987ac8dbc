"""Per-row reasons: the features that pushed a customer's score up the most.

Uses LightGBM's exact TreeSHAP contributions (`pred_contrib`) for the rows asked only (scoring
all customers does not need them). Serving turns (feature, value) into a sentence.
"""

from __future__ import annotations

import numpy as np
import polars as pl

from models.bundle import ModelBundle

REASON_SCHEMA = {
    "customer_id": pl.String,
    "rank": pl.Int32,
    "feature": pl.String,
    "value": pl.Float64,
    "contribution": pl.Float64,
}


def top_contributions(bundle: ModelBundle, features: pl.DataFrame, k: int = 3) -> pl.DataFrame:
    """Long frame (customer_id, rank, feature, value, contribution): for each row, up to `k`
    features with a positive contribution (log-odds), largest first. Rows without any positive
    contribution get no reason rows. A missing feature value (which LightGBM may route to a
    positive leaf) is null in `value`.
    """
    if k < 1:
        raise ValueError("k must be at least 1")
    if features.height == 0:
        return pl.DataFrame(schema=REASON_SCHEMA)
    ids = (
        features["customer_id"].cast(pl.String).to_numpy()
        if "customer_id" in features.columns
        else np.arange(features.height).astype(str)
    )
    return top_contributions_matrix(bundle, bundle.matrix(features), ids, k)


def top_contributions_matrix(
    bundle: ModelBundle, values: np.ndarray, ids: np.ndarray, k: int = 3
) -> pl.DataFrame:
    """`top_contributions` of a float matrix in the order of `bundle.feature_names` (one row
    per id): the real-time service has its rows as numpy already."""
    if k < 1:
        raise ValueError("k must be at least 1")
    if len(values) == 0:
        return pl.DataFrame(schema=REASON_SCHEMA)
    contrib = bundle.estimator.contributions(values)[:, :-1]
    k = min(k, contrib.shape[1])
    order = np.argsort(-contrib, axis=1, kind="stable")[:, :k]
    top = np.take_along_axis(contrib, order, axis=1)
    row = np.repeat(np.arange(len(values)), k)
    col = order.ravel()
    keep = top.ravel() > 0
    names = np.asarray(bundle.feature_names, dtype=object)
    return pl.DataFrame(
        {
            "customer_id": np.asarray(ids, dtype=object)[row[keep]],
            "rank": np.tile(np.arange(1, k + 1, dtype=np.int32), len(values))[keep],
            "feature": names[col[keep]],
            "value": values[row[keep], col[keep]],
            "contribution": top.ravel()[keep],
        },
        schema=REASON_SCHEMA,
    ).with_columns(pl.col("value").fill_nan(None))
