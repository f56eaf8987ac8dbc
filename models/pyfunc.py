"""The MLflow pyfunc face of a `ModelBundle`: the registry stores the joblib bundle as an
artifact plus a column signature, so MLflow itself refuses input with the wrong columns.

The signature declares every feature as float64 (double): cast the feature columns to Float64
before calling the pyfunc model (MLflow will not convert int64 or bool to double itself).
`ModelBundle.predict_proba` takes any numeric dtypes.
"""

from __future__ import annotations

from typing import Any

import mlflow.pyfunc
import numpy as np
import pandas as pd
import polars as pl

from models.bundle import ModelBundle

BUNDLE_ARTIFACT = "bundle"


class BundleModel(mlflow.pyfunc.PythonModel):
    """Loads the joblib bundle from the model's artifacts; predicts calibrated probabilities."""

    def load_context(self, context: Any) -> None:
        """Called by MLflow when the model is loaded."""
        from pathlib import Path

        self.bundle = ModelBundle.load(Path(context.artifacts[BUNDLE_ARTIFACT]))

    def predict(
        self, context: Any, model_input: pd.DataFrame, params: dict[str, Any] | None = None
    ) -> np.ndarray:
        """Calibrated probability per input row (MLflow passes a pandas frame that has passed
        the logged column signature)."""
        return self.bundle.predict_proba(pl.from_pandas(model_input))
