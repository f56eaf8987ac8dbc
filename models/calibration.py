"""Map raw model scores to calibrated probabilities, fitted on the validation snapshot.

Calibrated scores are comparable across products (the serving arbitration compares them).
`sigmoid` fits a logistic regression on the logit of the raw score (Platt scaling in log-odds
space: monotone, so the ranking and ROC-AUC are unchanged); `isotonic` fits a monotone step
function (more flexible, needs more validation positives, may tie scores).
"""

from __future__ import annotations

from typing import Literal

import numpy as np
from scipy.special import expit
from sklearn.base import BaseEstimator
from sklearn.isotonic import IsotonicRegression
from sklearn.linear_model import LogisticRegression
from sklearn.utils.validation import check_is_fitted

CalibrationMethod = Literal["sigmoid", "isotonic"]
_EPS = 1e-6


def _logit(p: np.ndarray) -> np.ndarray:
    p = np.clip(np.asarray(p, dtype=np.float64), _EPS, 1 - _EPS)
    return np.log(p / (1 - p)).reshape(-1, 1)


class ScoreCalibrator(BaseEstimator):
    """Calibrate raw probabilities of the positive class."""

    def __init__(self, method: CalibrationMethod = "sigmoid") -> None:
        self.method = method

    def fit(self, scores: np.ndarray, y: np.ndarray) -> ScoreCalibrator:
        """Learn the mapping from raw scores to observed frequencies."""
        y = np.asarray(y).astype(np.int64)
        if self.method == "sigmoid":
            model = LogisticRegression(C=1e6, max_iter=1000)
            model.fit(_logit(scores), y)
        elif self.method == "isotonic":
            model = IsotonicRegression(y_min=0.0, y_max=1.0, out_of_bounds="clip")
            model.fit(np.asarray(scores, dtype=np.float64), y)
        else:
            raise ValueError(f"unknown calibration method {self.method!r}")
        self.calibrator_ = model
        return self

    def predict(self, scores: np.ndarray) -> np.ndarray:
        """Calibrated probabilities, shape (n,)."""
        check_is_fitted(self, "calibrator_")
        if self.method == "sigmoid":
            # LogisticRegression.predict_proba(x)[:, 1] is expit(x @ coef.T + intercept); the
            # same arithmetic without its per-call validation (real-time scoring is a few rows)
            model = self.calibrator_
            return expit((_logit(scores) @ model.coef_.T + model.intercept_).ravel())
        return np.asarray(self.calibrator_.predict(np.asarray(scores, dtype=np.float64)))
