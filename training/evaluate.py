"""Test-snapshot metrics for a model's scores, the logistic baseline and the simulator oracle."""

from __future__ import annotations

from datetime import date, timedelta

import numpy as np
import polars as pl
from sklearn.impute import SimpleImputer
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import average_precision_score, brier_score_loss, roc_auc_score
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import StandardScaler

TOP_FRACTIONS = (0.05, 0.10, 0.20)


def lift_and_capture(y: np.ndarray, p: np.ndarray, fraction: float) -> tuple[float, float]:
    """Lift (positive rate in the top `fraction` by score / overall rate) and capture (share of
    all positives found there)."""
    y = np.asarray(y)
    k = max(1, int(np.ceil(fraction * len(y))))
    top = y[np.argsort(-np.asarray(p), kind="stable")[:k]]
    total = y.sum()
    if total == 0:
        return float("nan"), float("nan")
    return float(top.mean() / y.mean()), float(top.sum() / total)


def expected_calibration_error(y: np.ndarray, p: np.ndarray, n_bins: int = 10) -> float:
    """ECE over equal-mass bins of the score: sum of bin share * |mean score - positive rate|.

    Equal-mass bins, because with a few percent positives nearly every score falls in the
    first of ten equal-width bins, which would hide miscalibration among the high scores."""
    order = np.argsort(np.asarray(p), kind="stable")
    y_sorted = np.asarray(y, dtype=np.float64)[order]
    p_sorted = np.asarray(p, dtype=np.float64)[order]
    gaps = [
        len(idx) * abs(p_sorted[idx].mean() - y_sorted[idx].mean())
        for idx in np.array_split(np.arange(len(p_sorted)), n_bins)
        if len(idx)
    ]
    return float(np.sum(gaps) / len(p_sorted))


def score_metrics(y: np.ndarray, p: np.ndarray) -> dict[str, float]:
    """ROC-AUC, PR-AUC, Brier, ECE, lift and capture at the top 5/10/20%."""
    y = np.asarray(y).astype(np.int64)
    p = np.asarray(p, dtype=np.float64)
    both = 0 < y.sum() < len(y)
    out = {
        "roc_auc": float(roc_auc_score(y, p)) if both else float("nan"),
        "pr_auc": float(average_precision_score(y, p)) if both else float("nan"),
        "brier": float(brier_score_loss(y, p)),
        "ece": expected_calibration_error(y, p),
        "mean_score": float(p.mean()),
        "base_rate": float(y.mean()),
    }
    for fraction in TOP_FRACTIONS:
        lift, capture = lift_and_capture(y, p, fraction)
        pct = round(fraction * 100)
        out[f"lift_at_{pct}pct"] = lift
        out[f"capture_at_{pct}pct"] = capture
    return out


def baseline_pipeline(seed: int) -> Pipeline:
    """Logistic regression on the same features: median imputation, scaling."""
    return Pipeline(
        [
            ("impute", SimpleImputer(strategy="median", keep_empty_features=True)),
            ("scale", StandardScaler()),
            ("logreg", LogisticRegression(max_iter=500, C=1.0, random_state=seed)),
        ]
    )


def oracle_probability(
    truth: pl.LazyFrame, product: str, as_of: date, horizon_days: int
) -> pl.LazyFrame:
    """(customer_id, p_true): the simulator's P(open within the horizon) =
    1 - prod over the horizon's months of (1 - p_open)."""
    end = as_of + timedelta(days=horizon_days)
    return (
        truth.filter(
            (pl.col("product") == product) & (pl.col("month") >= as_of) & (pl.col("month") < end)
        )
        .group_by("customer_id")
        .agg((1 - pl.col("p_open").clip(0.0, 1.0)).log().sum().alias("log_stay"))
        .select("customer_id", (1 - pl.col("log_stay").exp()).alias("p_true"))
    )


def oracle_auc(
    truth: pl.LazyFrame, product: str, test_ids: pl.DataFrame, y: np.ndarray, horizon_days: int
) -> float | None:
    """ROC-AUC of the true probabilities on the test population (`test_ids`: customer_id,
    as_of in label order); customers absent from the truth count as p = 0."""
    as_of = test_ids["as_of"][0]
    p_true = oracle_probability(truth, product, as_of, horizon_days).collect()
    joined = test_ids.select("customer_id").join(
        p_true, on="customer_id", how="left", maintain_order="left"
    )
    p = joined["p_true"].fill_null(0.0).to_numpy()
    if not 0 < np.asarray(y).sum() < len(y):
        return None
    return float(roc_auc_score(y, p))
