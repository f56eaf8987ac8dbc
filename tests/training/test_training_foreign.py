"""A bank unlike the Dutch default (synthbank's `foreign` profile: GBP, no mcc/location/country,
English descriptions, other product names, zoned timestamps, 15 months): the adaptive defaults
train a usable model with nothing configured but the products, currency and time zone."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from datetime import date
from pathlib import Path

import polars as pl
import pytest

from features.config import FeatureConfig, InputOptions
from features.io import load_tables
from models.products import ProductSpec
from synthbank import generate
from training.config import TrainingConfig
from training.train import train_products

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def foreign_bank(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("foreign") / "bank"
    generate(customers=3000, months=15, seed=1, out=out, end=date(2025, 7, 1), profile="foreign")
    return out


def test_foreign_profile_looks_like_another_bank(foreign_bank: Path):
    schema = pl.scan_parquet(foreign_bank / "transactions" / "*.parquet").collect_schema()
    assert {"mcc", "location", "country"}.isdisjoint(schema.names())
    assert schema["booked_at"] == pl.Datetime("us", "UTC")
    products = set(pl.read_parquet(foreign_bank / "products.parquet")["product"])
    assert products == {"deposit", "travel_insurance", "credit_card", "loan"}
    descriptions = pl.scan_parquet(foreign_bank / "transactions" / "*.parquet").select(
        pl.col("description").drop_nulls().unique()
    )
    assert "CHILD BENEFIT" in descriptions.collect()["description"].to_list()


def test_adaptive_defaults_train_a_usable_model_on_a_small_foreign_bank(foreign_bank: Path, store):
    tables = load_tables(foreign_bank, options=InputOptions(timezone="Europe/London")).tables
    spec = ProductSpec(name="travel_insurance", credit=False)
    results = train_products(
        tables, TrainingConfig(), [spec], *store,
        feature_config=FeatureConfig(currency="GBP", home_country="GB"),
    )  # fmt: skip
    result = results["travel_insurance"]
    assert result.trained, result.message
    assert result.metrics["roc_auc"] > 0.75  # about 0.88 with seed 1; 0.5 is a constant
    assert result.plan.coverage.start == date(2024, 4, 1)  # London time, not UTC or Amsterdam
    assert result.plan.snapshots.test == date(2025, 4, 1)
    params = result.bundle.training["lightgbm"]
    assert params["num_leaves"] == 7 and params["reg_lambda"] > 5  # 161 training positives
    others = {p: r for p, r in results.items() if p != "travel_insurance"}
    assert all(not r.trained and "no [[products]] entry" in r.message for r in others.values())
    assert set(others) == {"deposit", "credit_card", "loan"}


def test_train_exits_non_zero_with_a_message_when_no_model_can_be_trained(tmp_path: Path):
    bank = tmp_path / "bank"
    generate(customers=60, months=18, seed=2, out=bank)
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    done = subprocess.run(
        [sys.executable, "-m", "propensity.cli", "train", str(bank), "--work-dir",
         str(tmp_path / "work"), "--products", "child_savings"],
        capture_output=True, text=True, env=env, cwd=tmp_path, timeout=300,
    )  # fmt: skip
    assert done.returncode == 2, done.stderr
    assert "no model could be trained" in done.stderr and "child_savings: skipped" in done.stderr
    assert "Traceback" not in done.stderr


FOREIGN_CONFIG = """
campaigns = []

[data]
timezone = "Europe/London"

[features]
currency = "GBP"

[training]
n_train_snapshots = 2

[[products]]
name = "travel_insurance"
credit = false
"""


def test_train_config_products_are_the_list_trained_and_the_others_are_reported(
    foreign_bank: Path, tmp_path: Path
):
    config = tmp_path / "propensity.toml"
    config.write_text(FOREIGN_CONFIG)
    metrics = tmp_path / "metrics.json"
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    done = subprocess.run(
        [sys.executable, "-m", "propensity.cli", "train", str(foreign_bank), "--config",
         str(config), "--work-dir", str(tmp_path / "work"), "--metrics-out", str(metrics)],
        capture_output=True, text=True, env=env, cwd=tmp_path, timeout=300,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    result = json.loads(metrics.read_text())
    assert result["travel_insurance"]["status"] == "trained"
    for product in ("deposit", "credit_card", "loan"):
        assert result[product]["status"] == "skipped"
        assert "no [[products]] entry" in result[product]["message"]
    assert "transactions cover 2024-04-01 .. 2025-06-30" in done.stdout  # the printed plan
