"""A small generated bank written as customer buckets, with real champions in a real MLflow
store, for the compute tests and `benchmarks/dask_vs_local.py`."""

from __future__ import annotations

import dataclasses
import shutil
from dataclasses import dataclass
from datetime import date, timedelta
from pathlib import Path

import polars as pl
from mlflow import MlflowClient

from features.config import FeatureConfig
from features.consent import consenting_tables
from features.io import load_tables
from features.pipeline import build_features
from features.schemas import Tables
from models.bundle import ModelBundle, library_versions, schema_hash, to_matrix
from models.calibration import ScoreCalibrator
from models.estimator import PropensityEstimator
from models.products import DEFAULT_PRODUCT_SPECS
from models.registry import model_name, quiet_mlflow
from propensity.config import AppConfig
from propensity.job import default_as_of
from serving.config import Campaign
from serving.pipeline import EngineConfig
from synthbank import generate
from training.dataset import feature_columns
from training.labels import build_labels
from training.register import log_and_register

SMALL_TABLES = ("customers", "products", "consents", "contacts")
PRODUCTS = ("savings", "credit_card")  # credit_card: the distress flags matter too


def write_buckets(bank: Path, out: Path, n: int) -> Path:
    """`bank`'s tables with the transactions split into `n` customer-disjoint parts
    (contiguous ranges of sorted customer ids, independent of `serving.buckets`)."""
    tx = pl.read_parquet(bank / "transactions")
    ids = tx["customer_id"].unique().sort()
    edges = [ids[len(ids) * i // n] for i in range(1, n)]
    parts = out / "transactions"
    parts.mkdir(parents=True)
    low = None
    for i, high in enumerate([*edges, None]):
        keep = pl.lit(True) if low is None else pl.col("customer_id") >= low
        if high is not None:
            keep = keep & (pl.col("customer_id") < high)
        tx.filter(keep).write_parquet(parts / f"part-{i:05d}.parquet")
        low = high
    for name in SMALL_TABLES:
        if (bank / f"{name}.parquet").exists():
            shutil.copy(bank / f"{name}.parquet", out / f"{name}.parquet")
    return out


def write_single_file(bank: Path, out: Path) -> Path:
    """`bank`'s tables with the transactions in one file (no buckets to reuse)."""
    out.mkdir(parents=True)
    pl.read_parquet(bank / "transactions").write_parquet(out / "transactions.parquet")
    for name in SMALL_TABLES:
        if (bank / f"{name}.parquet").exists():
            shutil.copy(bank / f"{name}.parquet", out / f"{name}.parquet")
    return out


def train_champions(
    tables: Tables,
    as_of: date,
    tracking_uri: str,
    work: Path,
    products: tuple[str, ...] = PRODUCTS,
) -> None:
    """Small real LightGBM models (one snapshot, 120 days before `as_of`), registered and
    made champion, one per product of `products`."""
    quiet_mlflow()
    train_as_of = as_of - timedelta(days=120)
    consenting = consenting_tables(tables)
    features = build_features(consenting, train_as_of, FeatureConfig()).collect()
    names = feature_columns(features)
    client = MlflowClient(tracking_uri=tracking_uri, registry_uri=tracking_uri)
    for spec in DEFAULT_PRODUCT_SPECS:
        if spec.name not in products:
            continue
        labels = build_labels(consenting, spec, [train_as_of], 90).collect()
        frame = labels.join(features, ["customer_id", "as_of"]).sort("customer_id")
        x, y = to_matrix(frame.select(names)), frame["label"].to_numpy()
        est = PropensityEstimator(
            n_estimators=30, num_leaves=7, min_child_samples=10, early_stopping_rounds=0, n_jobs=2
        ).fit(x, y)
        cal = ScoreCalibrator().fit(est.predict_proba(x)[:, 1], y)
        bundle = ModelBundle(spec.name, names, est, cal, schema_hash(names), library_versions())
        bundle = bundle.with_feature_config(FeatureConfig())  # checked again at scoring
        _, version = log_and_register(
            bundle,
            params={"product": spec.name},
            metrics={},
            plots_dir=None,
            fingerprint="compute-test",
            work_dir=work,
            tracking_uri=tracking_uri,
        )
        client.set_registered_model_alias(model_name(spec.name), "champion", version)


def tight_campaigns(as_of: date) -> tuple[Campaign, ...]:
    """Campaigns whose capacities bind on a few hundred customers, so arbitration matters."""
    start, end = as_of - timedelta(days=30), as_of + timedelta(days=30)
    return (
        Campaign(
            id="savings-t", product="savings", channels=("email", "post"), start=start,
            end=end, capacity={"email": 40, "post": 10}, min_propensity=0.0, value=150.0,
            control_share=0.2,
        ),
        Campaign(
            id="card-t", product="credit_card", channels=("email", "phone"), start=start,
            end=end, capacity={"email": 30, "phone": 5}, min_propensity=0.0, value=200.0,
            control_share=0.2,
        ),
    )  # fmt: skip


@dataclass(frozen=True)
class World:
    data_dir: Path
    tables: Tables
    as_of: date
    tracking_uri: str

    def engine(self, work_dir: Path) -> EngineConfig:
        config = AppConfig(work_dir=work_dir).engine_config(self.tracking_uri)
        return dataclasses.replace(config, campaigns=tight_campaigns(self.as_of))


def make_world(root: Path, customers: int, months: int, parts: int, seed: int = 1) -> World:
    """Generate the bank, split it into `parts` buckets, load it and register champions."""
    bank = root / "bank"
    generate(customers=customers, months=months, seed=seed, out=bank)
    data_dir = write_buckets(bank, root / "bucketed", parts)
    tables = load_tables(data_dir).tables
    as_of = default_as_of(tables)
    uri = f"sqlite:///{root / 'mlflow.db'}"
    train_champions(tables, as_of, uri, root / "models")
    return World(data_dir, tables, as_of, uri)
