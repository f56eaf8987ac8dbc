"""Fit one product's model and calibrator, and evaluate it against the baseline and oracle."""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import polars as pl

from features.catalogue import is_money
from models.bundle import ModelBundle, library_versions, schema_hash, to_matrix
from models.calibration import ScoreCalibrator
from training.config import TrainingConfig
from training.dataset import ProductData
from training.evaluate import baseline_pipeline, oracle_auc, score_metrics
from training.plots import write_plots
from training.splits import Snapshots

log = logging.getLogger(__name__)


def fit_bundle(
    product: str, data: ProductData, names: list[str], snapshots: Snapshots, config: TrainingConfig
) -> ModelBundle:
    """LightGBM early-stopped on the validation snapshot, then calibrated on it."""
    x_val = to_matrix(data.validation.features)
    estimator = config.lightgbm.estimator(config.seed, data.train.n, data.train.n_pos)
    estimator.fit(to_matrix(data.train.features), data.train.y, eval_set=(x_val, data.validation.y))
    raw_val = estimator.predict_proba(x_val)[:, 1]
    calibrator = ScoreCalibrator(config.calibration).fit(raw_val, data.validation.y)
    return ModelBundle(
        product=product,
        feature_names=list(names),
        estimator=estimator,
        calibrator=calibrator,
        schema_hash=schema_hash(list(names)),
        library_versions=library_versions(),
        training={
            "train_as_of": [d.isoformat() for d in snapshots.train],
            "validation_as_of": snapshots.validation.isoformat(),
            "test_as_of": snapshots.test.isoformat(),
            "horizon_days": snapshots.horizon_days,
            "best_iteration": estimator.best_iteration_,
            "lightgbm": {k: v for k, v in estimator.get_params().items()},
            "config": config.model_dump(mode="json"),
        },
    )


@dataclass(frozen=True)
class Evaluation:
    model: dict[str, float]
    baseline: dict[str, float]
    oracle_roc_auc: float | None
    oracle_at_t_roc_auc: float | None
    plots_dir: Path
    importance: dict[str, float]

    @property
    def top_features(self) -> list[str]:
        """Feature names by mean |SHAP| on the test snapshot, largest first."""
        return sorted(self.importance, key=lambda name: self.importance[name], reverse=True)

    def metric_log(self) -> dict[str, float]:
        """Flat metric names for the MLflow run."""
        out = {f"test_{k}": v for k, v in self.model.items()}
        out |= {f"baseline_{k}": v for k, v in self.baseline.items()}
        if self.oracle_roc_auc is not None:
            out["oracle_roc_auc"] = self.oracle_roc_auc
        if self.oracle_at_t_roc_auc is not None:
            out["oracle_at_t_roc_auc"] = self.oracle_at_t_roc_auc
        return out

    def version_tags(self) -> dict[str, str]:
        """Evaluation results recorded on the registered version."""
        keys = ("roc_auc", "pr_auc", "brier", "ece", "lift_at_10pct", "capture_at_10pct")
        tags = {f"test_{k}": f"{self.model[k]:.6f}" for k in keys}
        tags["baseline_roc_auc"] = f"{self.baseline['roc_auc']:.6f}"
        if self.oracle_roc_auc is not None:
            tags["oracle_roc_auc"] = f"{self.oracle_roc_auc:.6f}"
        if self.oracle_at_t_roc_auc is not None:
            tags["oracle_at_t_roc_auc"] = f"{self.oracle_at_t_roc_auc:.6f}"
        return tags


def _baseline_scores(data: ProductData, config: TrainingConfig) -> np.ndarray:
    """Logistic regression on (a seeded sample of) the training rows, scored on the test rows."""
    features, y = data.train.features, data.train.y
    if len(y) > config.baseline_max_rows:
        keep = np.random.default_rng(config.seed).choice(
            len(y), config.baseline_max_rows, replace=False
        )
        features, y = features[keep], y[keep]  # only the sample becomes a matrix
    x = to_matrix(features)
    money = [i for i, name in enumerate(features.columns) if is_money(name)]
    model = baseline_pipeline(config.seed, money).fit(x, y)
    return model.predict_proba(to_matrix(data.test.features))[:, 1]


def shap_importance(
    bundle: ModelBundle, features: pl.DataFrame, rows: int, seed: int
) -> dict[str, float]:
    """Mean |TreeSHAP contribution| per feature on a seeded sample of rows."""
    if features.height > rows:
        features = features.sample(rows, seed=seed)
    contrib = np.abs(bundle.contributions(features)[:, :-1]).mean(axis=0)
    return dict(zip(bundle.feature_names, contrib.tolist(), strict=True))


def evaluate_product(
    bundle: ModelBundle,
    data: ProductData,
    config: TrainingConfig,
    truth: pl.LazyFrame | None,
    plots_dir: Path,
) -> Evaluation:
    """Metrics of the model and the baseline on the test snapshot, the oracle's AUC, plots."""
    test = data.test
    scores = bundle.predict_proba(test.features)
    baseline = _baseline_scores(data, config)
    oracle = oracle_at_t = None
    if truth is not None:
        horizon = data_horizon(bundle)
        oracle = oracle_auc(truth, bundle.product, test.ids, test.y, horizon)
        oracle_at_t = oracle_auc(truth, bundle.product, test.ids, test.y, horizon, at_t=True)
    importance = shap_importance(bundle, test.features, config.shap_rows, config.seed)
    write_plots(
        plots_dir,
        bundle.product,
        test.y,
        {"LightGBM": scores, "logistic baseline": baseline},
        importance,
    )
    return Evaluation(
        score_metrics(test.y, scores),
        score_metrics(test.y, baseline),
        oracle,
        oracle_at_t,
        plots_dir,
        importance,
    )


def data_horizon(bundle: ModelBundle) -> int:
    return int(bundle.training["horizon_days"])
