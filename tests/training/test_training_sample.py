"""The training sample (issue 16): the same customers every night, drawn by the project's
keyed hash, applied only above its size, and only the sampled customers' rows are read."""

from __future__ import annotations

import hashlib
from datetime import date
from pathlib import Path

import polars as pl
import pytest
from mlflow import MlflowClient

from features.consent import consenting_tables, profilable_ids
from features.io import load_tables
from features.schemas import Tables
from training.config import TrainingConfig
from training.sample import SAMPLE_HASH_KEY, draw_sample
from training.train import build_feature_frame, train_products, training_sample


def _ids(n: int) -> pl.Series:
    return pl.Series("customer_id", [f"C{i:07d}" for i in range(n)])


def test_sample_is_the_smallest_keyed_hashes_whatever_the_row_order() -> None:
    ids = _ids(2000)
    first = draw_sample(ids, 300)
    again = draw_sample(ids.sample(fraction=1.0, shuffle=True, seed=3), 300)
    assert first.ids is not None and again.ids is not None
    assert first.ids.to_list() == again.ids.to_list()
    assert (first.population, first.size, first.ids.len()) == (2000, 300, 300)
    # the scheme itself, recomputed with hashlib: keyed BLAKE2b-64, big-endian, smallest first
    key = {
        c: int.from_bytes(hashlib.blake2b(c.encode(), digest_size=8, key=SAMPLE_HASH_KEY).digest())
        for c in ids
    }
    assert set(first.ids) == set(sorted(ids, key=key.__getitem__)[:300])
    smaller = draw_sample(ids, 100).ids
    assert smaller is not None and set(smaller) < set(first.ids)  # a larger sample keeps it
    assert "300 of 2,000 customers" in first.line()


@pytest.mark.parametrize("size", [None, 0, 2000, 5000])
def test_a_bank_no_larger_than_the_sample_trains_on_everyone(size: int | None) -> None:
    sample = draw_sample(_ids(2000), size)
    assert sample.ids is None and sample.size == sample.population == 2000
    assert sample.line() == "trained on all 2,000 customers per snapshot"


@pytest.fixture(scope="module")
def bank(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Tables]:
    from synthbank import generate

    data = tmp_path_factory.mktemp("sample") / "bank"
    generate(customers=400, months=18, seed=2, out=data)
    return data, load_tables(data).tables


def test_training_reads_only_the_sampled_consenting_customers(bank) -> None:
    _, tables = bank
    consenting = consenting_tables(tables)
    profilable = set(profilable_ids(tables).collect()["customer_id"])
    everyone = set(tables.customers.collect()["customer_id"])
    assert everyone - profilable  # the bank has objectors (or customers without a consent row)
    sampled, sample = training_sample(consenting, TrainingConfig(sample_customers=150))
    assert sample.ids is not None and sample.population == len(profilable)
    chosen = set(sample.ids)
    assert len(chosen) == 150 and chosen <= profilable
    for name in ("transactions", "customers", "products", "consents"):
        seen = set(getattr(sampled, name).select("customer_id").collect()["customer_id"])
        assert seen and seen <= chosen, name
    frame = build_feature_frame(sampled, [date(2026, 3, 1), date(2026, 6, 1)])
    assert set(frame["customer_id"]) <= chosen
    assert set(frame["customer_id"]).isdisjoint(everyone - profilable)


def test_mlflow_run_records_the_sample(bank, store) -> None:
    _, tables = bank
    work, uri = store
    config = TrainingConfig(n_train_snapshots=2, min_positives=2, sample_customers=200)
    result = train_products(tables, config, ["savings"], work, uri)["savings"]
    assert result.trained, result.message
    assert result.counts["n_test"] <= 200 < len(profilable_ids(tables).collect())
    client = MlflowClient(tracking_uri=uri, registry_uri=uri)
    version = client.get_model_version("propensity-savings", result.version)
    params = client.get_run(version.run_id).data.params
    assert params["sample_customers"] == "200" and params["customers_trained"] == "200"
    consenting = len(profilable_ids(tables).collect())
    assert int(params["customers_consenting"]) == consenting
    assert result.plan is not None  # `propensity train` prints these lines with the plan
    line = f"trained on 200 of {consenting:,} customers per snapshot (sample_customers)"
    assert line in result.plan.lines()
