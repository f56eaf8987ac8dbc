"""The challenger in shadow: scored on the run's customers, never used to decide.

Once the attribution window has data, champion and challenger are compared on the same
customers: ROC-AUC against who opened the product (converters), mean predicted vs observed
rate and the Brier score (calibration). Promotion stays a human decision (`--promote`) or the
training rule; this comparison only informs it.
"""

from __future__ import annotations

from datetime import date

import numpy as np
import polars as pl
from sklearn.metrics import roc_auc_score

from models.bundle import ModelBundle
from monitoring.uplift import opened_in_window, window_end

SHADOW_SCHEMA = {
    "customer_id": pl.String(),
    "product": pl.String(),
    "champion_version": pl.String(),
    "challenger_version": pl.String(),
    "champion_score": pl.Float64(),
    "challenger_score": pl.Float64(),
}


def shadow_scores(
    features: pl.DataFrame, scores: pl.DataFrame, challenger: ModelBundle, customers: pl.Series
) -> pl.DataFrame:
    """Champion and challenger scores of `customers` for the challenger's product."""
    product = challenger.product
    rows = features.join(customers.to_frame("customer_id"), "customer_id", "semi")
    champ = scores.filter(pl.col("product") == product).select(
        "customer_id", champion_score="propensity", champion_version="model_version"
    )
    shadow = pl.DataFrame(
        {
            "customer_id": rows["customer_id"],
            "challenger_score": np.asarray(challenger.predict_proba(rows), dtype=np.float64),
        }
    )
    return (
        shadow.join(champ, "customer_id")
        .with_columns(product=pl.lit(product), challenger_version=pl.lit(str(challenger.version)))
        .select([pl.col(c).cast(t) for c, t in SHADOW_SCHEMA.items()])
    )


def _metrics(y: np.ndarray, p: np.ndarray) -> dict[str, float | None]:
    auc = float(roc_auc_score(y, p)) if 0 < y.sum() < len(y) else None
    return {
        "roc_auc": auc,
        "mean_predicted": float(p.mean()),
        "brier": float(((p - y) ** 2).mean()),
    }


def compare(
    stored: pl.DataFrame,
    runs: pl.DataFrame,
    products: pl.LazyFrame,
    attribution_days: int,
    observed_until: date,
) -> pl.DataFrame:
    """Per (run, product): customers, converters, observed rate, AUC/mean/Brier of both models."""
    if stored.is_empty():
        return pl.DataFrame()
    pairs = stored.join(runs.select("run_id", "as_of"), "run_id").with_columns(
        window_end=window_end(pl.col("as_of"), attribution_days, observed_until)
    )
    labelled = opened_in_window(pairs, products)
    rows = []
    for (run_id, product), g in labelled.partition_by(
        "run_id", "product", as_dict=True, maintain_order=True
    ).items():
        y = g["opened"].to_numpy().astype(np.int64)
        champ = _metrics(y, g["champion_score"].to_numpy())
        chall = _metrics(y, g["challenger_score"].to_numpy())
        rows.append(
            {
                "run_id": run_id,
                "product": product,
                "champion_version": g["champion_version"][0],
                "challenger_version": g["challenger_version"][0],
                "customers": g.height,
                "converters": int(y.sum()),
                "observed_rate": float(y.mean()),
                **{f"champion_{k}": v for k, v in champ.items()},
                **{f"challenger_{k}": v for k, v in chall.items()},
            }
        )
    return pl.DataFrame(rows)
