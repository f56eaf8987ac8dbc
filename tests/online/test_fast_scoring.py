"""The real-time service scores and explains from a numpy matrix, straight through the LightGBM
Booster: the numbers and sentences must be the batch's (`score_features`, `explain_features`)."""

from __future__ import annotations

from datetime import date

import numpy as np
import polars as pl
import pytest
from polars.testing import assert_frame_equal

from models.bundle import ModelBundle, schema_hash
from models.calibration import ScoreCalibrator, _logit
from models.estimator import PropensityEstimator
from serving.online_decide import FeatureRows, explain_rows, score_rows
from serving.scoring import explain_features, score_features

NAMES = ["large_inflow_amount_max_90d", "airport_txn_count_30d", "noise_a", "noise_b"]
N = 400


def _frame(seed: int) -> pl.DataFrame:
    rng = np.random.default_rng(seed)
    inflow = rng.gamma(2.0, 5000.0, N)
    inflow[rng.random(N) < 0.1] = np.nan  # missing values take LightGBM's missing branch
    return pl.DataFrame(
        {
            "customer_id": [f"c{i:04d}" for i in range(N)],
            "large_inflow_amount_max_90d": inflow,
            "airport_txn_count_30d": rng.integers(0, 5, N).astype(float),
            "noise_a": rng.normal(size=N),
            "noise_b": rng.normal(size=N),
        }
    ).with_columns(pl.col("large_inflow_amount_max_90d").fill_nan(None))


def _bundle(product: str, frame: pl.DataFrame, method: str, seed: int) -> ModelBundle:
    x = frame.select(NAMES).to_numpy()
    rng = np.random.default_rng(seed)
    y = ((np.nan_to_num(x[:, 0]) > 9000) ^ (rng.random(N) < 0.2)).astype(int)
    est = PropensityEstimator(
        n_estimators=25, num_leaves=7, min_child_samples=10, early_stopping_rounds=0, n_jobs=1
    ).fit(x, y)
    cal = ScoreCalibrator(method).fit(est.predict_proba(x)[:, 1], y)  # type: ignore[arg-type]
    return ModelBundle(product, NAMES, est, cal, schema_hash(NAMES), version=str(seed))


@pytest.mark.parametrize("method", ["sigmoid", "isotonic"])
def test_booster_and_calibrator_give_the_wrappers_numbers(method: str) -> None:
    frame = _frame(3)
    bundle = _bundle("savings", frame, method, 4)
    x = frame.select(NAMES).to_numpy()
    wrapper = bundle.estimator.model_.predict_proba(x)[:, 1]
    assert np.max(np.abs(bundle.estimator.positive_proba(x) - wrapper)) <= 1e-12
    contrib = bundle.estimator.model_.predict(x, pred_contrib=True)
    assert np.max(np.abs(bundle.estimator.contributions(x) - contrib)) <= 1e-12
    if method == "sigmoid":  # the logistic regression's own predict_proba
        sklearn = bundle.calibrator.calibrator_.predict_proba(_logit(wrapper))[:, 1]
        assert np.max(np.abs(bundle.calibrator.predict(wrapper) - sklearn)) <= 1e-12
    assert not np.allclose(bundle.predict_matrix(x), bundle.predict_matrix(x)[0])  # not constant


def test_online_scores_and_reasons_equal_the_batch() -> None:
    frame = _frame(1)
    bundles = {
        "savings": _bundle("savings", frame, "sigmoid", 1),
        "insurance": _bundle("insurance", frame, "isotonic", 2),
    }
    # the snapshot keeps its own column order, with a feature no model reads
    snapshot = frame.with_columns(extra=pl.lit(1.0)).select(
        "customer_id", "noise_b", "extra", "airport_txn_count_30d", *NAMES[:1], "noise_a"
    )
    names = snapshot.columns[1:]
    rows = FeatureRows(snapshot["customer_id"].to_list(), names, snapshot.select(names).to_numpy())
    rng = np.random.default_rng(7)
    ids = sorted(rng.choice(frame["customer_id"].to_list(), 60, replace=False).tolist())
    wanted = {"savings": ids[:45], "insurance": ids[20:]}

    online = score_rows(rows, wanted, bundles)
    batch = score_features(frame, bundles)
    key = ["customer_id", "product"]
    both = online.join(batch, key, "left", suffix="_batch")
    assert both.height == 85 and both["propensity_batch"].null_count() == 0
    assert (both["propensity"] - both["propensity_batch"]).abs().max() <= 1e-12
    assert both["model_version"].to_list() == both["model_version_batch"].to_list()

    pairs = online.select(key).sort(key)
    as_of = date(2026, 11, 2)
    fast = explain_rows(rows, pairs, bundles, as_of, 3).sort(key)
    slow = explain_features(frame, bundles, pairs, as_of, 3).sort(key)
    assert fast.height > 0
    assert_frame_equal(fast, slow)
