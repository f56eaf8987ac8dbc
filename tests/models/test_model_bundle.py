from __future__ import annotations

from pathlib import Path

import numpy as np
import polars as pl
import pytest
from sklearn.base import clone
from sklearn.metrics import roc_auc_score

from features.errors import PropensityError
from models.bundle import FeatureMismatchError, ModelBundle, schema_hash
from models.calibration import ScoreCalibrator
from models.estimator import PropensityEstimator
from tests.models.modeldata import NAMES, numeric_frame


def test_joblib_round_trip_gives_identical_scores(fitted_bundle: ModelBundle, tmp_path: Path):
    frame, _ = numeric_frame(500, 3)
    loaded = ModelBundle.load(fitted_bundle.save(tmp_path / "b.joblib"))
    np.testing.assert_array_equal(loaded.predict_proba(frame), fitted_bundle.predict_proba(frame))
    assert loaded.feature_names == NAMES
    assert loaded.schema_hash == schema_hash(NAMES)
    assert set(loaded.library_versions) >= {"lightgbm", "scikit-learn", "python"}


def test_scores_are_probabilities_that_rank(fitted_bundle: ModelBundle):
    frame, y = numeric_frame(3000, 4)
    p = fitted_bundle.predict_proba(frame)
    assert p.shape == (3000,) and np.all((p > 0) & (p < 1))
    assert roc_auc_score(y, p) > 0.75
    assert abs(p.mean() - y.mean()) < 0.02


def test_columns_are_matched_by_name_not_position(fitted_bundle: ModelBundle):
    frame, _ = numeric_frame(200, 5)
    shuffled = frame.select("customer_id", *reversed(NAMES))
    np.testing.assert_array_equal(
        fitted_bundle.predict_proba(shuffled), fitted_bundle.predict_proba(frame)
    )


def test_missing_column_is_refused_naming_it(fitted_bundle: ModelBundle):
    frame, _ = numeric_frame(50, 6)
    with pytest.raises(FeatureMismatchError, match="airport_txn_count_30d"):
        fitted_bundle.predict_proba(frame.drop("airport_txn_count_30d"))


def test_renamed_columns_in_the_right_order_are_refused(fitted_bundle: ModelBundle):
    frame, _ = numeric_frame(50, 7)
    renamed = frame.rename({n: f"col_{i}" for i, n in enumerate(NAMES)})
    with pytest.raises(PropensityError, match="missing") as info:
        fitted_bundle.predict_proba(renamed)
    assert "col_0" in str(info.value)
    with pytest.raises(FeatureMismatchError):
        fitted_bundle.contributions(renamed)


def test_non_numeric_feature_is_refused(fitted_bundle: ModelBundle):
    frame, _ = numeric_frame(20, 8)
    bad = frame.with_columns(pl.col("age_years").cast(pl.String))
    with pytest.raises(FeatureMismatchError, match="age_years"):
        fitted_bundle.predict_proba(bad)


def test_nulls_are_scored_as_missing(fitted_bundle: ModelBundle):
    frame, _ = numeric_frame(20, 9)
    with_nulls = frame.with_columns(pl.lit(None, pl.Float64).alias("noise_a"))
    assert np.isfinite(fitted_bundle.predict_proba(with_nulls)).all()


def test_contributions_sum_to_the_raw_log_odds(fitted_bundle: ModelBundle):
    frame, _ = numeric_frame(100, 10)
    contrib = fitted_bundle.contributions(frame)
    assert contrib.shape == (100, len(NAMES) + 1)
    raw = fitted_bundle.raw_proba(frame)
    np.testing.assert_allclose(contrib.sum(axis=1), np.log(raw / (1 - raw)), rtol=1e-6)


def test_estimator_follows_the_sklearn_contract():
    est = PropensityEstimator(num_leaves=7, learning_rate=0.1)
    assert est.get_params()["num_leaves"] == 7
    assert not hasattr(est, "model_")
    copy = clone(est)
    assert copy.get_params() == est.get_params()
    with pytest.raises(ValueError, match="both classes"):
        est.fit(np.zeros((10, 2)), np.zeros(10))


def test_isotonic_and_sigmoid_calibrators_are_monotone():
    rng = np.random.default_rng(0)
    raw = rng.random(5000)
    y = (rng.random(5000) < raw**2).astype(int)
    grid = np.linspace(0.01, 0.99, 50)
    for method in ("sigmoid", "isotonic"):
        cal = ScoreCalibrator(method).fit(raw, y)
        out = cal.predict(grid)
        assert np.all(np.diff(out) >= -1e-12)
        assert abs(cal.predict(raw).mean() - y.mean()) < 0.01
