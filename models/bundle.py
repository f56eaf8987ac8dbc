"""What a trained model is: estimator + calibrator + the exact feature list, saved with joblib.

The bundle refuses a feature frame whose columns do not match the feature list it was trained
on (by name, not by position), so a model can never silently score the wrong columns. It also
carries the feature settings it was trained with (`feature_settings`): scoring with other
windows or categorisation rules gives columns of the same names but other meanings, which only
`check_feature_config` catches.
"""

from __future__ import annotations

import hashlib
import json
import logging
import platform
from dataclasses import dataclass, field, replace
from importlib.metadata import version as _dist_version
from pathlib import Path
from typing import Any

import joblib
import numpy as np
import polars as pl

from features.config import FeatureConfig
from features.errors import ConfigError, PropensityError
from models.calibration import ScoreCalibrator
from models.estimator import PropensityEstimator

log = logging.getLogger(__name__)

BUNDLE_FORMAT = 1
_LIBRARIES = ("lightgbm", "scikit-learn", "polars", "numpy", "joblib")


class FeatureMismatchError(PropensityError):
    """The feature frame does not have the columns the model was trained on."""


def schema_hash(feature_names: list[str]) -> str:
    """A short fingerprint of the ordered feature list (changes when any name or order does)."""
    return hashlib.sha256("\n".join(feature_names).encode()).hexdigest()[:16]


def library_versions() -> dict[str, str]:
    """Versions of the libraries that shape the model's output, recorded for reproducibility."""
    out = {"python": platform.python_version()}
    for name in _LIBRARIES:
        out[name] = _dist_version(name)
    return out


@dataclass(frozen=True)
class ModelBundle:
    """A calibrated propensity model for one product."""

    product: str
    feature_names: list[str]
    estimator: PropensityEstimator
    calibrator: ScoreCalibrator
    schema_hash: str
    library_versions: dict[str, str] = field(default_factory=dict)
    training: dict[str, Any] = field(default_factory=dict)
    version: str | None = None
    format: int = BUNDLE_FORMAT
    feature_config: dict[str, Any] | None = None
    """`feature_settings` of the training run; None in bundles saved before it was kept."""

    def with_version(self, version: str | None) -> ModelBundle:
        """A copy carrying the registry version it was loaded as."""
        return replace(self, version=version)

    def with_feature_config(self, config: FeatureConfig) -> ModelBundle:
        """A copy that records the feature settings it is trained with."""
        return replace(self, feature_config=feature_settings(config))

    def matrix(self, features: pl.DataFrame) -> np.ndarray:
        """The model's input matrix, columns selected by name; nulls become NaN."""
        have = features.schema
        missing = [c for c in self.feature_names if c not in have]
        if missing:
            extra = [c for c in have if c not in self.feature_names and c not in ID_COLUMNS]
            raise FeatureMismatchError(
                f"model for product {self.product!r} cannot score this frame: "
                f"{len(missing)} feature column(s) missing, e.g. {missing[:5]}"
                + (f"; unexpected columns, e.g. {extra[:5]}" if extra else "")
            )
        bad = [c for c in self.feature_names if not _numeric(have[c])]
        if bad:
            raise FeatureMismatchError(
                f"model for product {self.product!r}: feature column(s) {bad[:5]} are not "
                f"numeric (e.g. {bad[0]} is {have[bad[0]]})"
            )
        return to_matrix(features.select(self.feature_names))

    def raw_proba(self, features: pl.DataFrame) -> np.ndarray:
        """Uncalibrated LightGBM probability, shape (n,)."""
        return self.estimator.positive_proba(self.matrix(features))

    def predict_proba(self, features: pl.DataFrame) -> np.ndarray:
        """Calibrated probability of opening the product within the horizon, shape (n,)."""
        if features.height == 0:
            self.matrix(features)
            return np.empty(0, dtype=np.float64)
        return self.predict_matrix(self.matrix(features))

    def predict_matrix(self, values: np.ndarray) -> np.ndarray:
        """`predict_proba` of a float matrix whose columns are `feature_names` in order (the
        real-time service builds it from its numpy snapshot, no frame per event)."""
        if len(values) == 0:
            return np.empty(0, dtype=np.float64)
        return self.calibrator.predict(self.estimator.positive_proba(values))

    def contributions(self, features: pl.DataFrame) -> np.ndarray:
        """LightGBM `pred_contrib` (log-odds), shape (n, n_features + 1); last column = bias."""
        return self.estimator.contributions(self.matrix(features))

    def save(self, path: Path) -> Path:
        """Write the bundle with joblib; returns the path."""
        path.parent.mkdir(parents=True, exist_ok=True)
        joblib.dump(self, path, compress=3)
        return path

    @staticmethod
    def load(path: Path) -> ModelBundle:
        """Read a bundle written by `save` (trusted files only: joblib unpickles)."""
        obj = joblib.load(path)
        if not isinstance(obj, ModelBundle):
            raise PropensityError(f"{path} does not hold a ModelBundle (found {type(obj)})")
        return obj


ID_COLUMNS = ("customer_id", "as_of")  # the key of a feature frame, never a feature


def to_matrix(frame: pl.DataFrame) -> np.ndarray:
    """Float64 matrix, nulls as NaN (LightGBM's missing value)."""
    return frame.select(pl.all().cast(pl.Float64)).to_numpy().astype(np.float64, copy=False)


def _numeric(dtype: pl.DataType) -> bool:
    return dtype.is_numeric() or dtype == pl.Boolean or dtype == pl.Null


# Settings that do not shape the model's input: the distress check is eligibility, and the rule
# sources are replaced by the effective rules they produce (a rules file counts by content).
# settings that never change a model input value (currency only labels the reason texts)
_NOT_FEATURE_SETTINGS = {
    "distress",
    "rules",
    "rules_file",
    "disabled_rules",
    "currency",
    "uncategorised_warning",
}


def feature_settings(config: FeatureConfig) -> dict[str, Any]:
    """Every feature setting that shapes the model's input, as JSON-ready data: the
    FeatureConfig fields and the effective categorisation (categories with their kind, the
    rules in evaluation order, the airport flags)."""
    from features.categories import load_ruleset

    ruleset = load_ruleset(config)
    data = config.model_dump(mode="json", exclude=_NOT_FEATURE_SETTINGS)
    data["categories"] = {
        c: "special"
        if c in ruleset.special
        else "eligibility_only"
        if c in ruleset.eligibility_only
        else "feature"
        for c in ruleset.categories
    }
    data["rules"] = {r.name: r.model_dump(mode="json") for r in ruleset.rules}
    data["rule_order"] = [r.name for r in ruleset.rules]
    data["airport"] = {"location": list(ruleset.airport_location), "mcc": list(ruleset.airport_mcc)}
    return json.loads(json.dumps(data))  # plain lists and dicts, as they come back from JSON


def _differences(trained: dict[str, Any], now: dict[str, Any]) -> list[str]:
    out = []
    for key in sorted(trained.keys() | now.keys()):
        was, is_ = trained.get(key), now.get(key)
        if was == is_:
            continue
        if key == "rules" and isinstance(was, dict) and isinstance(is_, dict):
            for name in sorted(was.keys() | is_.keys()):
                if name not in is_:
                    out.append(f"rule {name!r} was used in training and is missing now")
                elif name not in was:
                    out.append(f"rule {name!r} is new (not used in training)")
                elif was[name] != is_[name]:
                    out.append(f"rule {name!r} changed")
        elif key == "rule_order" and set(was or ()) == set(is_ or ()):
            out.append("the categorisation rules are tried in another order")
        elif key not in ("rule_order",):
            out.append(f"features.{key}: trained with {was!r}, configured {is_!r}")
    return out


def check_feature_config(bundle: ModelBundle, config: FeatureConfig) -> None:
    """Refuse to score with feature settings other than the model's training ones (ConfigError,
    exit 2, naming the differing settings). A bundle from before the settings were recorded
    cannot be checked: logged, not refused."""
    if bundle.feature_config is None:
        log.warning(
            "model for product %r (version %s) does not record its feature settings; "
            "retrain it to have them checked at scoring time",
            bundle.product,
            bundle.version,
        )
        return
    diffs = _differences(bundle.feature_config, feature_settings(config))
    if diffs:
        shown = "; ".join(diffs[:5]) + (f"; and {len(diffs) - 5} more" if len(diffs) > 5 else "")
        raise ConfigError(
            f"model for product {bundle.product!r} (version {bundle.version or '?'}) was trained "
            f"with other feature settings: {shown}. Score with the [features] settings it was "
            "trained with, or retrain it"
        )
