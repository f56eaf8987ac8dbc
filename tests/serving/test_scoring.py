"""Scoring and reasons with a real (small) LightGBM bundle: long scores, top-3 sentences."""

from __future__ import annotations

from datetime import date

import numpy as np
import polars as pl

from models.bundle import ModelBundle, schema_hash
from models.calibration import ScoreCalibrator
from models.estimator import PropensityEstimator
from serving.scoring import explain_features, score_features

NAMES = ["large_inflow_amount_max_90d", "airport_txn_count_30d", "noise_a", "noise_b"]


def _bundle(product: str, features: pl.DataFrame, y: np.ndarray) -> ModelBundle:
    x = features.select(NAMES).to_numpy()
    est = PropensityEstimator(
        n_estimators=20, num_leaves=7, min_child_samples=10, early_stopping_rounds=0, n_jobs=2
    ).fit(x, y)
    cal = ScoreCalibrator().fit(est.predict_proba(x)[:, 1], y)
    return ModelBundle(product, NAMES, est, cal, schema_hash(NAMES), version="3")


def test_scores_are_long_and_reasons_name_the_driving_feature() -> None:
    rng = np.random.default_rng(1)
    n = 600
    inflow = rng.gamma(2.0, 5000.0, n)
    features = pl.DataFrame(
        {
            "customer_id": [f"c{i:04d}" for i in range(n)],
            "large_inflow_amount_max_90d": inflow,
            "airport_txn_count_30d": rng.integers(0, 5, n).astype(float),
            "noise_a": rng.normal(size=n),
            "noise_b": rng.normal(size=n),
        }
    )
    y = (inflow > 15_000).astype(int)
    bundles = {"savings": _bundle("savings", features, y)}
    scores = score_features(features, bundles)
    assert scores.columns == ["customer_id", "product", "propensity", "model_version"]
    assert scores.height == n and scores["model_version"].unique().to_list() == ["3"]
    top = scores.sort("propensity", descending=True).head(5).select("customer_id", "product")
    reasons = explain_features(features, bundles, top, date(2026, 11, 2))
    assert sorted(reasons["customer_id"]) == sorted(top["customer_id"])
    assert reasons["reasons"].list.len().max() <= 3
    firsts = reasons["reasons"].list.first()
    assert firsts.str.contains("(?i)inflow").all(), firsts.to_list()
