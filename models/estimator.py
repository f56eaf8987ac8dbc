"""LightGBM propensity classifier with scikit-learn's estimator contract.

A thin wrapper so the hyperparameters (including early stopping and the thread count) live
in one cloneable object: `__init__` stores them unchanged, `fit` validates and learns, learned
attributes end in `_`. No resampling or class weights: the raw scores stay probabilities.
"""

from __future__ import annotations

import logging
import os

# libgomp reads OMP_WAIT_POLICY once, when LightGBM's library loads. Its default (spinning
# threads) made a small fit 20x slower on the shared 2-core machine when other processes
# were busy; passive waiting costs little when the machine is idle. A user's setting wins.
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

import lightgbm as lgb
import numpy as np
from sklearn.base import BaseEstimator, ClassifierMixin
from sklearn.utils.validation import check_is_fitted

from models.lgbm_params import DEFAULTS

log = logging.getLogger(__name__)


class PropensityEstimator(ClassifierMixin, BaseEstimator):
    """Gradient-boosted trees for P(open product within the horizon).

    Early stopping watches the binary log-loss on `eval_set` (the validation snapshot); without
    an eval set all `n_estimators` trees are kept.
    """

    def __init__(
        self,
        n_estimators: int = DEFAULTS["n_estimators"],
        learning_rate: float = DEFAULTS["learning_rate"],
        num_leaves: int = DEFAULTS["num_leaves"],
        min_child_samples: int = DEFAULTS["min_child_samples"],
        subsample: float = DEFAULTS["subsample"],
        colsample_bytree: float = DEFAULTS["colsample_bytree"],
        reg_lambda: float = DEFAULTS["reg_lambda"],
        max_bin: int = DEFAULTS["max_bin"],
        early_stopping_rounds: int = DEFAULTS["early_stopping_rounds"],
        n_jobs: int = DEFAULTS["n_jobs"],
        random_state: int = 0,
    ) -> None:
        self.n_estimators = n_estimators
        self.learning_rate = learning_rate
        self.num_leaves = num_leaves
        self.min_child_samples = min_child_samples
        self.subsample = subsample
        self.colsample_bytree = colsample_bytree
        self.reg_lambda = reg_lambda
        self.max_bin = max_bin
        self.early_stopping_rounds = early_stopping_rounds
        self.n_jobs = n_jobs
        self.random_state = random_state

    def _lgbm(self) -> lgb.LGBMClassifier:
        return lgb.LGBMClassifier(
            objective="binary",
            n_estimators=self.n_estimators,
            learning_rate=self.learning_rate,
            num_leaves=self.num_leaves,
            min_child_samples=self.min_child_samples,
            subsample=self.subsample,
            subsample_freq=1 if self.subsample < 1.0 else 0,
            colsample_bytree=self.colsample_bytree,
            reg_lambda=self.reg_lambda,
            max_bin=self.max_bin,
            n_jobs=self.n_jobs,
            random_state=self.random_state,
            # Bit-identical models for the same data, seed and thread count: deterministic
            # histogram sums, one fixed histogram layout (no timing-based auto choice).
            deterministic=True,
            force_col_wise=True,
            verbose=-1,
        )

    def fit(
        self,
        X: np.ndarray,
        y: np.ndarray,
        eval_set: tuple[np.ndarray, np.ndarray] | None = None,
    ) -> PropensityEstimator:
        """Fit on a float matrix (NaN = missing) and 0/1 labels; early-stop on `eval_set`."""
        X = np.asarray(X, dtype=np.float64)
        y = np.asarray(y).astype(np.int64)
        if X.ndim != 2 or len(X) != len(y):
            raise ValueError(f"X must be 2-D with one row per label, got {X.shape} and {y.shape}")
        if set(np.unique(y)) != {0, 1}:
            raise ValueError("y must contain both classes 0 and 1")
        model = self._lgbm()
        kwargs: dict = {}
        if eval_set is not None:
            kwargs["eval_X"] = (np.asarray(eval_set[0], dtype=np.float64),)
            kwargs["eval_y"] = (np.asarray(eval_set[1]).astype(np.int64),)
            kwargs["eval_metric"] = "binary_logloss"
            kwargs["callbacks"] = [lgb.early_stopping(self.early_stopping_rounds, verbose=False)]
        model.fit(X, y, **kwargs)
        self.model_ = model
        self.classes_ = model.classes_
        self.n_features_in_ = X.shape[1]
        self.best_iteration_ = int(model.best_iteration_ or model.n_estimators)
        log.debug("fitted %d trees", self.best_iteration_)
        return self

    def predict_proba(self, X: np.ndarray) -> np.ndarray:
        """Uncalibrated class probabilities, shape (n, 2)."""
        check_is_fitted(self, "model_")
        return self.model_.predict_proba(np.asarray(X, dtype=np.float64))

    def positive_proba(self, X: np.ndarray) -> np.ndarray:
        """P(class 1), shape (n,): `predict_proba(X)[:, 1]` straight from the LightGBM
        Booster. The scikit-learn wrapper validates and re-reads every parameter per call
        (about 1 ms); a real-time decision scores a handful of rows, so that is most of it."""
        check_is_fitted(self, "model_")
        x = np.asarray(X, dtype=np.float64)
        return np.asarray(self.model_.booster_.predict(x, num_threads=self._threads()))

    def contributions(self, X: np.ndarray) -> np.ndarray:
        """Per-feature log-odds contributions (TreeSHAP); last column is the bias."""
        check_is_fitted(self, "model_")
        x = np.asarray(X, dtype=np.float64)
        return np.asarray(
            self.model_.booster_.predict(x, pred_contrib=True, num_threads=self._threads())
        )

    def _threads(self) -> int:
        """The wrapper's own thread count (its `n_jobs`, special values resolved)."""
        return int(self.model_._process_n_jobs(self.model_.n_jobs))
