"""Per-product training on Dask (issue 16): the features are built once in the client, each
product's LightGBM fit runs on a worker of a 2-worker LocalCluster (loopback only), and the
models equal those trained in process with the same thread count, tree for tree."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import numpy as np
import pytest

from models.products import ProductSpec
from propensity.compute import ComputeConfig, open_compute, worker_threads
from serving.buckets import Buckets
from tests.training.toybank import toy_bank
from training.config import LightGBMParams, TrainingConfig
from training.train import ProductResult, train_products

try:
    from distributed import get_task_stream
except ImportError:  # the dask extra; CI installs it, so there it must not skip
    if os.environ.get("CI"):
        raise
    pytest.skip('no dask extra: pip install -e ".[dask]"', allow_module_level=True)

PRODUCTS = [
    ProductSpec(name="savings"),
    ProductSpec(name="rare", credit=False),
]  # rare: skipped, few openers


def _train(tmp: Path, name: str, **kw) -> dict[str, ProductResult]:
    tables, features, truth = toy_bank(3000, seed=0)
    work = tmp / name
    work.mkdir()
    # every worker fits with its share of the cores: train locally with the same count
    lgbm = LightGBMParams(n_estimators=120, n_jobs=worker_threads(2))
    config = TrainingConfig(lightgbm=lgbm, sample_customers=2000)
    return train_products(
        tables, config, PRODUCTS, work, f"sqlite:///{work / 'mlflow.db'}", truth.lazy(),
        features=features, **kw,
    )  # fmt: skip


def test_products_fitted_on_a_local_cluster_equal_local_training(tmp_path: Path) -> None:
    local = _train(tmp_path, "local")
    with open_compute(ComputeConfig(scheduler="processes", workers=2), tmp_path) as compute:
        assert isinstance(compute, Buckets)
        client = compute.backend.client  # type: ignore[attr-defined]
        with get_task_stream(client) as stream:
            on_dask = _train(tmp_path, "dask", backend=compute.backend)
    fits = [t for t in stream.data if "fit_here" in str(t["key"])]
    assert len(fits) == 1  # savings fitted on a worker; rare skipped before any fit
    shutil.rmtree(tmp_path / "dask" / "mlartifacts", ignore_errors=True)
    assert list(on_dask) == list(local) == ["savings", "rare"]
    assert not on_dask["rare"].trained and on_dask["rare"].message == local["rare"].message
    a, b = local["savings"].bundle, on_dask["savings"].bundle
    assert a is not None and b is not None and on_dask["savings"].trained
    assert a.estimator.model_.n_jobs == b.estimator.model_.n_jobs == worker_threads(2)
    booster = a.estimator.model_.booster_.model_to_string()
    assert booster == b.estimator.model_.booster_.model_to_string()
    _, features, _ = toy_bank(3000, seed=0)
    np.testing.assert_allclose(b.predict_proba(features), a.predict_proba(features), rtol=1e-12)
    assert on_dask["savings"].counts == local["savings"].counts
    assert on_dask["savings"].metrics == local["savings"].metrics
