"""Load registered models by alias (`models:/propensity-<product>@champion`), never by stage.

Also the small pieces of MLflow setup shared by training and serving: where the tracking store
is, and keeping MLflow offline and quiet.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from features.errors import ModelNotFoundError
from models.bundle import ModelBundle

log = logging.getLogger(__name__)

DEFAULT_WORK_DIR = Path("propensity-work")
MODEL_PREFIX = "propensity-"
_QUIET_ENV = {
    "MLFLOW_DISABLE_TELEMETRY": "true",
    "DO_NOT_TRACK": "true",
    "MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR": "false",
    "MLFLOW_RECORD_ENV_VARS_IN_MODEL_LOGGING": "false",
    "GIT_PYTHON_REFRESH": "quiet",
}


def model_name(product: str) -> str:
    """The registered model name for a product."""
    return f"{MODEL_PREFIX}{product}"


def resolve_tracking_uri(tracking_uri: str | None = None, work_dir: Path | None = None) -> str:
    """Explicit URI, else $MLFLOW_TRACKING_URI, else an embedded SQLite store in the work dir."""
    if tracking_uri:
        return tracking_uri
    env = os.environ.get("MLFLOW_TRACKING_URI")
    if env:
        return env
    root = (work_dir or DEFAULT_WORK_DIR).resolve()
    root.mkdir(parents=True, exist_ok=True)
    return f"sqlite:///{root / 'mlflow.db'}"


def quiet_mlflow() -> None:
    """Keep MLflow offline (no telemetry) and its loggers at WARNING."""
    for key, value in _QUIET_ENV.items():
        os.environ.setdefault(key, value)
    for name in ("mlflow", "alembic", "urllib3"):
        logging.getLogger(name).setLevel(logging.WARNING)
    pyfunc_log = logging.getLogger("mlflow.pyfunc")
    if not any(isinstance(f, _DropKnownNoise) for f in pyfunc_log.filters):
        pyfunc_log.addFilter(_DropKnownNoise())


class _DropKnownNoise(logging.Filter):
    """Drops MLflow's advice to use models-from-code: our PythonModel class is importable, so
    cloudpickle stores a reference to it, not code."""

    def filter(self, record: logging.LogRecord) -> bool:
        return not record.getMessage().startswith("Passing a Python object as `python_model`")


@contextmanager
def mlflow_session(tracking_uri: str) -> Iterator[None]:
    """Point MLflow's tracking and registry at `tracking_uri` for the block, then restore."""
    quiet_mlflow()
    import mlflow

    saved = {k: os.environ.get(k) for k in ("MLFLOW_TRACKING_URI", "MLFLOW_REGISTRY_URI")}
    mlflow.set_tracking_uri(tracking_uri)
    mlflow.set_registry_uri(tracking_uri)
    try:
        yield
    finally:
        mlflow.set_tracking_uri(saved["MLFLOW_TRACKING_URI"])
        mlflow.set_registry_uri(saved["MLFLOW_REGISTRY_URI"])
        for key, value in saved.items():
            if value is None:
                os.environ.pop(key, None)


def model_version(product: str, alias: str, tracking_uri: str) -> str:
    """The version number behind `alias`; ModelNotFoundError when there is none."""
    from mlflow import MlflowClient
    from mlflow.exceptions import MlflowException

    quiet_mlflow()
    client = MlflowClient(tracking_uri=tracking_uri, registry_uri=tracking_uri)
    try:
        return str(client.get_model_version_by_alias(model_name(product), alias).version)
    except MlflowException as exc:
        raise ModelNotFoundError(
            f"no model {model_name(product)!r} with alias {alias!r} in {tracking_uri} "
            f"(train it first with `propensity train`)"
        ) from exc


def load_bundle(
    product: str,
    alias: str = "champion",
    tracking_uri: str | None = None,
    work_dir: Path | None = None,
) -> ModelBundle:
    """Load `models:/propensity-<product>@<alias>` as a ModelBundle with its registry version."""
    uri = resolve_tracking_uri(tracking_uri, work_dir)
    version = model_version(product, alias, uri)
    with mlflow_session(uri):
        import mlflow.pyfunc

        loaded = mlflow.pyfunc.load_model(f"models:/{model_name(product)}@{alias}")
    bundle: ModelBundle = loaded.unwrap_python_model().bundle
    log.info("loaded %s@%s (version %s)", model_name(product), alias, version)
    return bundle.with_version(version)
