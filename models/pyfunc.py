"""The MLflow pyfunc face of a `ModelBundle`: the registry stores the joblib bundle as an
artifact plus a column signature, so MLflow itself refuses input without the model's columns.

The registered model is self-contained: it declares pinned pip requirements
(`pip_requirements`) and carries the project code it imports (`code_paths`: the `features` and
`models` packages), so `mlflow models predict -m models:/propensity-savings@champion
--env-manager local` runs in an environment that has only what the model declares.

The signature names every feature column (required) with type `any`: the feature table that
`propensity features` writes arrives as ints, floats (an int column with nulls becomes float
in pandas) and booleans, and MLflow would refuse int64 or bool for `double`. The model itself
casts every column to float64 and refuses a non-numeric one (`ModelBundle.matrix`).
"""

from __future__ import annotations

import shutil
from importlib.metadata import version as dist_version
from pathlib import Path
from typing import Any

import mlflow.pyfunc
import numpy as np
import pandas as pd
import polars as pl

import features as features_package
import models as models_package
from models.bundle import ModelBundle

BUNDLE_ARTIFACT = "bundle"
# The distributions the model needs when it is loaded: MLflow and cloudpickle to load it,
# joblib and the libraries inside the bundle, polars/pandas/pyarrow for the frames, and
# pydantic, SQLAlchemy and psutil for the project modules in the code copy (configuration
# types, the tracking-store checks, the loader's memory-bounded key check).
# tests/models/test_registered_model.py checks the list against the imports of the code copy.
REQUIREMENTS = (
    "mlflow",
    "cloudpickle",
    "joblib",
    "lightgbm",
    "scikit-learn",
    "scipy",  # models.calibration: the sigmoid calibrator's expit (as scikit-learn's own)
    "numpy",
    "pandas",
    "polars",
    "pyarrow",
    "pydantic",
    "SQLAlchemy",
    "psutil",
)
CODE_PACKAGES = (features_package, models_package)  # the project code a loaded model imports


def pip_requirements() -> list[str]:
    """`name==version` of every distribution in REQUIREMENTS, as installed now."""
    return [f"{name}=={dist_version(name)}" for name in REQUIREMENTS]


def stage_code(into: Path) -> list[str]:
    """Copies of the project packages the model imports (sources and data files, no caches)
    under `into`, for `log_model(code_paths=...)`."""
    paths = []
    for package in CODE_PACKAGES:
        source = Path(package.__file__).parent
        target = into / source.name
        shutil.copytree(source, target, ignore=shutil.ignore_patterns("__pycache__", "*.pyc"))
        paths.append(str(target))
    return paths


def signature(feature_names: list[str]) -> Any:
    """Every feature column, required, of any type; the output is one probability."""
    from mlflow.models import ModelSignature
    from mlflow.types import ColSpec, Schema
    from mlflow.types.schema import AnyType

    return ModelSignature(
        inputs=Schema([ColSpec(AnyType(), name) for name in feature_names]),
        outputs=Schema([ColSpec("double", "probability")]),
    )


def input_example(features: pl.DataFrame, feature_names: list[str]) -> pd.DataFrame:
    """One anonymous input row: each feature's median (booleans: the more common value;
    integers rounded), so no customer's values are stored in the registry."""
    frame = features.select(feature_names)
    row: dict[str, Any] = {}
    for name, dtype in frame.schema.items():
        column = frame[name]
        if dtype == pl.Boolean:
            share = column.cast(pl.Float64).mean()
            row[name] = isinstance(share, float) and share >= 0.5
        elif column.null_count() == column.len():
            row[name] = None
        elif dtype.is_integer():
            row[name] = round(float(column.median()))  # type: ignore[arg-type]
        else:
            row[name] = float(column.median())  # type: ignore[arg-type]
    return pl.DataFrame([row], schema=frame.schema).to_pandas()


class BundleModel(mlflow.pyfunc.PythonModel):
    """Loads the joblib bundle from the model's artifacts; predicts calibrated probabilities."""

    def load_context(self, context: Any) -> None:
        """Called by MLflow when the model is loaded."""
        self.bundle = ModelBundle.load(Path(context.artifacts[BUNDLE_ARTIFACT]))

    def predict(
        self, context: Any, model_input: pd.DataFrame, params: dict[str, Any] | None = None
    ) -> np.ndarray:
        """Calibrated probability per input row (MLflow passes a pandas frame that has the
        logged columns; extra columns such as customer_id and as_of are ignored)."""
        frame = pl.from_pandas(model_input[self.bundle.feature_names])
        return self.bundle.predict_proba(frame)
