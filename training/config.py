"""Typed training configuration (frozen, unknown keys are errors)."""

from __future__ import annotations

from datetime import date
from typing import TYPE_CHECKING, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

from models.lgbm_params import DEFAULTS as D
from models.lgbm_params import adaptive_params

SAMPLE_CUSTOMERS = 50_000
"""Default training sample, measured by benchmarks/training_sample.py (docs/bank-sizes.md)."""

if TYPE_CHECKING:
    from models.estimator import PropensityEstimator


class LightGBMParams(BaseModel):
    """LightGBM hyperparameters; the defaults live in `models.lgbm_params.DEFAULTS`.

    Early stopping on the validation log-loss picks the number of trees; row and column
    subsampling reduce variance and time; no class weights, so probabilities stay honest.
    `num_leaves`, `min_child_samples` and `reg_lambda` left empty adapt to the training set
    (`models.lgbm_params.adaptive_params`: leaves of clip(rows / 20, 20, 300) rows; 7 leaves
    under 1,000 positives; `reg_lambda = clip(2000 / positives, 1, 10)`); a
    value set here is used as given. Training is deterministic: same data, seed and `n_jobs`,
    same model, bit for bit.
    """

    model_config = ConfigDict(extra="forbid", frozen=True)

    n_estimators: int = Field(D["n_estimators"], ge=1, description="upper bound; early stopping")
    learning_rate: float = Field(D["learning_rate"], gt=0, le=1)
    num_leaves: int | None = Field(None, ge=2, description="empty: adapts to the positives")
    min_child_samples: int | None = Field(
        None, ge=1, description="min rows per leaf; empty: adapts to the positives"
    )
    subsample: float = Field(D["subsample"], gt=0, le=1, description="row fraction per tree")
    colsample_bytree: float = Field(
        D["colsample_bytree"], gt=0, le=1, description="feature fraction per tree"
    )
    reg_lambda: float | None = Field(
        None, ge=0, description="L2 penalty on leaf values; empty: adapts to the positives"
    )
    max_bin: int = Field(D["max_bin"], ge=15, le=1023, description="histogram bins per feature")
    early_stopping_rounds: int = Field(
        D["early_stopping_rounds"], ge=1, description="patience on validation log-loss"
    )
    n_jobs: int = Field(
        D["n_jobs"], ge=1, description="LightGBM threads; fixed, so results are reproducible"
    )

    def resolved(self, n_rows: int, n_pos: int) -> dict[str, Any]:
        """Every parameter, the empty ones filled in for `n_rows` rows with `n_pos` positives."""
        params = self.model_dump()
        for key, value in adaptive_params(n_rows, n_pos).items():
            if params[key] is None:
                params[key] = value
        return params

    def estimator(self, seed: int, n_rows: int = 10**9, n_pos: int = 10**9) -> PropensityEstimator:
        """A fresh, unfitted estimator with these parameters (adapted to the training set)."""
        from models.estimator import PropensityEstimator  # loads LightGBM only when training

        return PropensityEstimator(**self.resolved(n_rows, n_pos), random_state=seed)


class TrainingConfig(BaseModel):
    """How labels, snapshots, models and calibration are chosen.

    Snapshots are month starts. Leakage rule: every training snapshot T satisfies
    T + horizon <= validation date, and validation + horizon <= test date, so no label window
    overlaps the next split's. The test date is the latest month start whose horizon is
    complete in the data (unless given).
    """

    model_config = ConfigDict(extra="forbid", frozen=True)

    horizon_days: int = Field(90, ge=1, le=366, description="label window [T, T + horizon)")
    n_train_snapshots: int = Field(12, ge=1, le=60, description="monthly training snapshots")
    min_history_days: int = Field(
        90, ge=0, description="training snapshots need this much payment history before them"
    )
    test_as_of: date | None = Field(None, description="override the test snapshot")
    validation_as_of: date | None = Field(None, description="override the validation snapshot")
    train_as_of: tuple[date, ...] | None = Field(None, description="override training snapshots")
    min_positives: int = Field(
        10,
        ge=2,
        description="floor: fewer positives in the training or validation snapshots and the "
        "product is skipped",
    )
    few_positives: int = Field(
        100,
        ge=2,
        description="fewer positives than this (but at least min_positives): trained, with a "
        "warning that the model is uncertain",
    )
    lightgbm: LightGBMParams = LightGBMParams()
    calibration: Literal["sigmoid", "isotonic"] = Field(
        "sigmoid", description="sigmoid keeps the ranking; isotonic is more flexible"
    )
    baseline_max_rows: int = Field(
        1_000_000,
        ge=1000,
        description="cap on training rows for the logistic baseline (above it: a seeded sample)",
    )
    shap_rows: int = Field(5000, ge=100, description="test rows used for the SHAP importance plot")
    sample_customers: int | None = Field(
        SAMPLE_CUSTOMERS,
        ge=0,
        description="customers trained on (the same ones at every snapshot, drawn by a stable "
        "hash of customer_id) when the bank has more; 0 or empty: everyone. The default keeps "
        "every product's test ROC-AUC within 0.005 of training on everyone (docs/bank-sizes.md)",
    )
    seed: int = 0

    @model_validator(mode="after")
    def _dates_ordered(self) -> TrainingConfig:
        if self.train_as_of is not None and len(self.train_as_of) == 0:
            raise ValueError("train_as_of must list at least one date")
        return self
