from __future__ import annotations

from pathlib import Path

import mlflow.pyfunc
import numpy as np
import polars as pl
import pytest
from mlflow import MlflowClient
from mlflow.exceptions import MlflowException

from features.errors import ModelNotFoundError
from features.schemas import Tables
from models.bundle import ModelBundle
from models.products import ProductSpec
from models.registry import load_bundle, mlflow_session
from training.config import LightGBMParams, TrainingConfig
from training.train import ProductResult, train_products

Bank = tuple[Tables, pl.DataFrame, pl.DataFrame]
GOOD = TrainingConfig(lightgbm=LightGBMParams(n_estimators=150))
WEAK = TrainingConfig(lightgbm=LightGBMParams(n_estimators=1, num_leaves=2))


def _train(bank: Bank, store: tuple[Path, str], config: TrainingConfig, **kw) -> dict:
    tables, features, truth = bank
    work_dir, uri = store
    return train_products(
        tables, config, kw.pop("products", ["savings"]), work_dir, uri, truth.lazy(),
        features=features, **kw,
    )  # fmt: skip


def _alias(client: MlflowClient, alias: str) -> str:
    return str(client.get_model_version_by_alias("propensity-savings", alias).version)


def test_first_run_registers_champion_and_skips_rare_product(bank: Bank, store):
    rare_spec = ProductSpec(name="rare", credit=False)
    results = _train(bank, store, GOOD, products=[ProductSpec(name="savings"), rare_spec])
    assert list(results) == ["savings", "rare"]
    rare = results["rare"]
    assert not rare.trained and "positives" in rare.message and rare.version is None
    savings = results["savings"]
    summary = savings.summary()
    assert summary["model_version"] == "1" and savings.promoted
    for key in ("roc_auc", "pr_auc", "lift_at_10pct", "brier", "ece", "baseline_roc_auc"):
        assert 0 < summary[key] < 10, key
    assert summary["n_train"] > summary["n_test"] > summary["n_pos_test"] > 0
    assert summary["oracle_roc_auc"] > 0.7 and summary["roc_auc"] > 0.65
    assert savings.top_features[0] == "signal"  # the only informative feature
    client = MlflowClient(tracking_uri=store[1], registry_uri=store[1])
    assert _alias(client, "champion") == _alias(client, "challenger") == "1"
    version = client.get_model_version("propensity-savings", "1")
    assert float(version.tags["test_roc_auc"]) == pytest.approx(summary["roc_auc"], abs=1e-6)
    assert version.tags["promotion_reason"] == "first model"
    run = client.get_run(version.run_id)
    assert run.data.tags["data_fingerprint"] == version.tags["data_fingerprint"]
    assert run.data.params["feature_schema_hash"] == savings.bundle.schema_hash
    assert run.data.metrics["test_roc_auc"] == pytest.approx(summary["roc_auc"])
    artifacts = {a.path for a in client.list_artifacts(run.info.run_id, "plots")}
    assert artifacts == {f"plots/{n}.png" for n in ("roc", "gain", "calibration", "importance")}
    assert (store[0] / "mlartifacts").is_dir()


def test_bundle_round_trip_joblib_and_alias_give_identical_scores(bank: Bank, store, tmp_path):
    trained = _train(bank, store, GOOD)["savings"].bundle
    assert trained is not None
    features = bank[1].head(500)
    expected = trained.predict_proba(features)
    from_joblib = ModelBundle.load(trained.save(tmp_path / "savings.joblib"))
    from_alias = load_bundle("savings", "champion", tracking_uri=store[1])
    assert from_alias.version == "1"
    np.testing.assert_array_equal(from_joblib.predict_proba(features), expected)
    np.testing.assert_array_equal(from_alias.predict_proba(features), expected)
    with mlflow_session(store[1]):
        pyfunc = mlflow.pyfunc.load_model("models:/propensity-savings@champion")
    as_float = features.select(pl.col(trained.feature_names).cast(pl.Float64)).to_pandas()
    np.testing.assert_allclose(pyfunc.predict(as_float), expected)
    with pytest.raises(MlflowException, match="noise_a"):
        pyfunc.predict(as_float.drop(columns=["noise_a"]))


def _version(results: dict[str, ProductResult]) -> str:
    version = results["savings"].version
    assert version is not None
    return version


def test_champion_moves_only_to_an_equal_or_better_model_or_when_forced(bank: Bank, store):
    client = MlflowClient(tracking_uri=store[1], registry_uri=store[1])
    weak = _train(bank, store, WEAK)
    assert _version(weak) == "1" and weak["savings"].promoted
    good = _train(bank, store, GOOD)
    assert good["savings"].metrics["roc_auc"] > weak["savings"].metrics["roc_auc"]
    assert _alias(client, "champion") == _alias(client, "challenger") == "2"
    worse = _train(bank, store, WEAK)
    assert not worse["savings"].promoted
    assert (_alias(client, "champion"), _alias(client, "challenger")) == ("2", "3")
    tags = client.get_model_version("propensity-savings", "3").tags
    assert tags["promoted"] == "false"
    assert float(tags["previous_champion_test_roc_auc"]) == pytest.approx(
        good["savings"].metrics["roc_auc"]
    )
    forced = _train(bank, store, WEAK, promote=True)
    assert forced["savings"].promoted
    assert _alias(client, "champion") == _alias(client, "challenger") == "4"


def test_loading_an_unknown_alias_is_a_clear_error(store):
    with pytest.raises(ModelNotFoundError, match="propensity-loan"):
        load_bundle("loan", "champion", tracking_uri=store[1])
