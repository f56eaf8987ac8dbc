"""MLflow: one run per product, the bundle as a registered pyfunc model, and the aliases.

A new version gets `challenger`. `champion` moves to it when there is no champion yet, when
`promote` is forced, or when its test ROC-AUC is at least the current champion's ROC-AUC on
the same test frame (the champion is re-scored here, so the comparison is like for like).
"""

from __future__ import annotations

import contextlib
import io
import logging
import tempfile
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import polars as pl
from sklearn.metrics import roc_auc_score

from features.errors import ModelNotFoundError, PropensityError
from models.bundle import ModelBundle
from models.pyfunc import (
    BUNDLE_ARTIFACT,
    BundleModel,
    input_example,
    pip_requirements,
    signature,
    stage_code,
)
from models.registry import (
    fail_orphaned_runs,
    load_bundle,
    mlflow_session,
    model_name,
    owner_tags,
)

log = logging.getLogger(__name__)

EXPERIMENT = "propensity"


@dataclass(frozen=True)
class Promotion:
    """The alias decision for a new model version."""

    promoted: bool
    reason: str


def _experiment_id(work_dir: Path, tracking_uri: str) -> str:
    import mlflow

    found = mlflow.get_experiment_by_name(EXPERIMENT)
    if found is not None:
        return found.experiment_id
    location = None
    if tracking_uri.startswith(("sqlite:", "file:")) or "://" not in tracking_uri:
        location = (work_dir.resolve() / "mlartifacts").as_uri()
    return mlflow.create_experiment(EXPERIMENT, artifact_location=location)


def _log_model(bundle: ModelBundle, example: pl.DataFrame | None) -> str:
    """Log the bundle as a self-contained pyfunc model in the active run (pinned requirements,
    the project code it imports, an anonymous input example); returns the model URI."""
    import mlflow.pyfunc

    with tempfile.TemporaryDirectory() as tmp, warnings.catch_warnings():
        warnings.filterwarnings("ignore", message=".*input example", category=UserWarning)
        path = bundle.save(Path(tmp) / "bundle.joblib")
        info = mlflow.pyfunc.log_model(
            name="model",
            python_model=BundleModel(),
            artifacts={BUNDLE_ARTIFACT: str(path)},
            signature=signature(bundle.feature_names),
            input_example=None if example is None else input_example(example, bundle.feature_names),
            pip_requirements=pip_requirements(),
            code_paths=stage_code(Path(tmp) / "code"),
        )
    return info.model_uri


def log_and_register(
    bundle: ModelBundle,
    *,
    params: dict[str, Any],
    metrics: dict[str, float],
    plots_dir: Path | None,
    fingerprint: str,
    work_dir: Path,
    tracking_uri: str,
    example: pl.DataFrame | None = None,
    reference: pl.DataFrame | None = None,
) -> tuple[str, str]:
    """One MLflow run for the product; registers a new version. Returns (run_id, version).
    `example` (feature rows) gives the logged input example its columns and typical values;
    `reference` (the training features) is profiled for drift monitoring and logged with it."""
    import mlflow

    with mlflow_session(tracking_uri):
        experiment_id = _experiment_id(work_dir, tracking_uri)
        fail_orphaned_runs(experiment_id, tracking_uri)
        with mlflow.start_run(experiment_id=experiment_id, run_name=bundle.product) as run:
            mlflow.log_params({k: str(v)[:500] for k, v in params.items()})
            mlflow.log_metrics({k: float(v) for k, v in metrics.items() if np.isfinite(v)})
            mlflow.set_tags(
                {"product": bundle.product, "data_fingerprint": fingerprint, **owner_tags()}
            )
            mlflow.log_text("\n".join(bundle.feature_names) + "\n", "features.txt")
            mlflow.log_dict(bundle.training, "training.json")
            if bundle.feature_config is not None:
                mlflow.log_dict(bundle.feature_config, "feature_config.json")
            if plots_dir is not None:
                mlflow.log_artifacts(str(plots_dir), "plots")
            if reference is not None:
                from models.drift_reference import REFERENCE_ARTIFACT, reference_profile

                profile = reference_profile(reference, bundle.predict_proba(reference))
                mlflow.log_dict(profile, REFERENCE_ARTIFACT)
            model_uri = _log_model(bundle, example)
        with contextlib.redirect_stderr(io.StringIO()):  # MLflow prints "Created version ..."
            version = mlflow.register_model(model_uri, model_name(bundle.product))
    return run.info.run_id, str(version.version)


def _champion_auc(
    product: str, tracking_uri: str, test_features: pl.DataFrame, y_test: np.ndarray
) -> tuple[str, float | None] | None:
    """(version, ROC-AUC on this test frame) of the current champion; None without one.

    The AUC is None when the champion cannot score the frame (its features changed)."""
    try:
        champion = load_bundle(product, "champion", tracking_uri)
    except ModelNotFoundError:
        return None
    try:
        scores = champion.predict_proba(test_features)
    except PropensityError as exc:
        log.warning("champion of %s cannot score the new test frame: %s", product, exc)
        return str(champion.version), None
    return str(champion.version), float(roc_auc_score(y_test, scores))


def set_aliases(
    product: str,
    version: str,
    roc_auc: float,
    *,
    test_features: pl.DataFrame,
    y_test: np.ndarray,
    promote: bool,
    tracking_uri: str,
    tags: dict[str, Any],
) -> Promotion:
    """Give `version` the challenger alias, decide on champion, and tag the version."""
    from mlflow import MlflowClient

    client = MlflowClient(tracking_uri=tracking_uri, registry_uri=tracking_uri)
    name = model_name(product)
    current = _champion_auc(product, tracking_uri, test_features, y_test)
    previous_auc = current[1] if current else None
    if current is None or promote:
        promoted = True
    else:
        promoted = previous_auc is not None and roc_auc >= previous_auc
    client.set_registered_model_alias(name, "challenger", version)
    if promoted:
        client.set_registered_model_alias(name, "champion", version)
    reason = _reason(current, promote, promoted)
    decision = {
        "promoted": str(promoted).lower(),
        "promotion_reason": reason,
        "previous_champion_version": current[0] if current else "",
        "previous_champion_test_roc_auc": "" if previous_auc is None else f"{previous_auc:.6f}",
    }
    for key, value in {**tags, **decision}.items():
        client.set_model_version_tag(name, version, key, str(value))
    return Promotion(promoted, reason)


def _reason(current: tuple[str, float | None] | None, promote: bool, promoted: bool) -> str:
    if current is None:
        return "first model"
    if promote:
        return "forced (--promote)"
    if current[1] is None:
        return "champion cannot score the new test frame; use --promote"
    return "test ROC-AUC >= champion's" if promoted else "test ROC-AUC below champion's"
