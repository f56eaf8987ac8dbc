"""A small fitted bundle on generated numeric data (real LightGBM, real calibrator)."""

from __future__ import annotations

import pytest

from models.bundle import ModelBundle, library_versions, schema_hash
from models.calibration import ScoreCalibrator
from models.estimator import PropensityEstimator
from tests.models.modeldata import NAMES, numeric_frame


@pytest.fixture(scope="session")
def fitted_bundle() -> ModelBundle:
    train, y_train = numeric_frame(4000, 1)
    val, y_val = numeric_frame(2000, 2)
    x_train = train.select(NAMES).to_numpy()
    x_val = val.select(NAMES).to_numpy()
    # Larger trees on every feature than the training defaults (models/lgbm_params.py), so
    # each feature, the missing one included, carries some contribution.
    est = PropensityEstimator(
        n_estimators=200, min_child_samples=20, num_leaves=31, colsample_bytree=0.8
    ).fit(x_train, y_train, eval_set=(x_val, y_val))
    cal = ScoreCalibrator("sigmoid").fit(est.predict_proba(x_val)[:, 1], y_val)
    return ModelBundle("savings", NAMES, est, cal, schema_hash(NAMES), library_versions())
