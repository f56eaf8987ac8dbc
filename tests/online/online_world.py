"""A small generated bank, four small real models in a real MLflow registry, and helpers that
start the real `propensity serve` (uvicorn) on a free loopback port."""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import sys
import time
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from pathlib import Path

import httpx
import numpy as np
import polars as pl
import tomlkit

from features.config import FeatureConfig
from features.consent import consenting_tables
from features.io import load_tables
from features.pipeline import build_features
from features.schemas import Tables
from models.bundle import ModelBundle, schema_hash
from models.calibration import ScoreCalibrator
from models.estimator import PropensityEstimator
from models.registry import model_name
from serving.config import ServingConfig
from serving.eligibility import distress_frame
from serving.online_store import write_online_snapshot

REPO = Path(__file__).resolve().parents[2]
PRODUCTS = ("savings", "insurance", "credit_card", "child_savings")
EVENTS_TOKEN = "events-secret-for-tests-0123456789"
DESK_TOKEN = "desk-secret-for-tests-0123456789"


@dataclass(frozen=True)
class Registry:
    """A real MLflow store with a champion per product."""

    work_dir: Path
    tracking_uri: str
    db: Path


@dataclass
class Bank:
    tables: Tables
    features: pl.DataFrame
    as_of: date
    adults: list[str]  # consenting adults, with a profile, in no distress, no insurance/card
    objector: str
    no_row: str


def make_bank(out: Path) -> Bank:
    """300 customers over 18 months (seed 1), as the project's CLI generates them."""
    from synthbank import generate

    generate(customers=300, months=18, seed=1, out=out / "bank")
    tables = load_tables(out / "bank").tables
    last = tables.transactions.select(pl.col("booked_at").max()).collect().item()
    as_of = last.date() + timedelta(days=1)
    features = build_features(consenting_tables(tables), as_of, FeatureConfig()).collect()
    consents = tables.consents.collect()
    customers = tables.customers.collect()
    held = (
        tables.products.filter(pl.col("product").is_in(["insurance", "credit_card"]))
        .select("customer_id")
        .collect()
    )
    adult = customers.filter(pl.col("birth_date") < date(as_of.year - 25, 1, 1))
    distress = distress_frame(consenting_tables(tables), as_of, ServingConfig()).collect()
    calm = distress.filter(~pl.col("in_distress")).select("customer_id")
    allowed = consents.filter(
        pl.col("payment_data_marketing") & pl.col("email") & pl.col("sms") & pl.col("post")
    )
    adults = (
        features.select("customer_id")
        .join(adult, "customer_id", "semi")
        .join(allowed, "customer_id", "semi")
        .join(held, "customer_id", "anti")
        .join(calm, "customer_id", "semi")
        .sort("customer_id")["customer_id"]
        .to_list()
    )
    objector = consents.filter(~pl.col("payment_data_marketing"))["customer_id"][0]
    no_row = customers.join(consents, "customer_id", "anti")["customer_id"]
    if no_row.is_empty():  # make one: drop a consent row
        victim = adults.pop()
        tables = tables.with_(consents=tables.consents.filter(pl.col("customer_id") != victim))
        no_row = pl.Series([victim])
    return Bank(tables, features, as_of, adults, objector, no_row[0])


def train_bundle(product: str, features: pl.DataFrame, seed: int) -> ModelBundle:
    """A small real LightGBM model with a real calibrator (labels: a noisy rule)."""
    names = [c for c in features.columns if c not in ("customer_id", "as_of")]
    x = features.select(pl.col(names).cast(pl.Float64)).to_numpy()
    rng = np.random.default_rng(seed)
    y = (rng.random(len(x)) < 0.35).astype(int)
    est = PropensityEstimator(
        n_estimators=15, num_leaves=7, min_child_samples=10, early_stopping_rounds=0, n_jobs=2
    ).fit(x, y)
    cal = ScoreCalibrator().fit(est.predict_proba(x)[:, 1], y)
    bundle = ModelBundle(product, names, est, cal, schema_hash(names))
    return bundle.with_feature_config(FeatureConfig())


def register(bundle: ModelBundle, work_dir: Path, tracking_uri: str, alias: str) -> str:
    """Log and register the bundle as MLflow does in training; point `alias` at it."""
    from mlflow import MlflowClient

    from training.register import log_and_register

    _, version = log_and_register(
        bundle,
        params={},
        metrics={},
        plots_dir=None,
        fingerprint="test",
        work_dir=work_dir,
        tracking_uri=tracking_uri,
    )
    client = MlflowClient(tracking_uri=tracking_uri, registry_uri=tracking_uri)
    client.set_registered_model_alias(model_name(bundle.product), alias, version)
    return version


def serving_toml(test_policy: dict[str, int], bank: Bank) -> dict:
    """Campaigns every test customer can reach (no control group, low thresholds)."""
    start, end = date(2020, 1, 1), date(2030, 12, 31)

    def campaign(cid: str, product: str, channels: list[str]) -> dict:
        return {
            "id": cid,
            "product": product,
            "channels": channels,
            "start": start,
            "end": end,
            "capacity": dict.fromkeys(channels, 100_000),
            "min_propensity": 0.0,
            "control_share": 0.0,
        }

    return {
        "policy": test_policy,
        "campaigns": [
            campaign("savings-test", "savings", ["email", "post"]),
            campaign("insurance-test", "insurance", ["email", "sms"]),
            campaign("card-test", "credit_card", ["email", "post"]),
            campaign("child-test", "child_savings", ["email", "post"]),
        ],
    }


def write_config(path: Path, data: dict) -> Path:
    doc = tomlkit.document()
    for key, value in data.items():
        doc[key] = value
    path.write_text(tomlkit.dumps(doc), encoding="utf-8")
    return path


def snapshot(bank: Bank, ledger_url: str, tables: Tables | None = None) -> int:
    return write_online_snapshot(
        ledger_url,
        tables or bank.tables,
        bank.features,
        bank.as_of,
        ServingConfig(),
        run_id=f"batch-{bank.as_of}",
    )


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class Server:
    """`propensity serve` in a subprocess on a free loopback port."""

    def __init__(self, config: Path, work_dir: Path, log: Path, workers: int = 1) -> None:
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        env = {**os.environ, "PYTHONPATH": str(REPO), "OMP_NUM_THREADS": "1"}
        env.pop("MLFLOW_TRACKING_URI", None)
        self.log = log
        self.proc = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "propensity.cli",
                "serve",
                "--config",
                str(config),
                "--port",
                str(self.port),
                "--work-dir",
                str(work_dir),
                "--workers",
                str(workers),
            ],
            stdout=log.open("w"),
            stderr=subprocess.STDOUT,
            env=env,
            cwd=work_dir,
        )
        deadline = time.monotonic() + 90
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"server exited {self.proc.returncode}: {log.read_text()}")
            try:
                if httpx.get(f"{self.url}/healthz", timeout=1).status_code == 200:
                    return
            except httpx.TransportError:
                time.sleep(0.2)
        self.stop()
        raise RuntimeError(f"server did not start: {log.read_text()}")

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()


def event(event_id: str, customer_id: str, day: date, **extra: object) -> dict:
    """A card payment at Schiphol (an airport: the travel trigger), unless `extra` says else."""
    base = {
        "event_id": event_id,
        "customer_id": customer_id,
        "booked_at": datetime.combine(day, datetime.min.time()).replace(hour=14).isoformat(),
        "amount": -23.5,
        "method": "card",
        "counterparty_name": "Bagels Schiphol",
        "mcc": 5812,
        "location": "Schiphol",
        "country": "NL",
    }
    return {**base, **extra}


def copy_store(template: Path, work_dir: Path) -> str:
    work_dir.mkdir(parents=True, exist_ok=True)
    shutil.copy(template, work_dir / "mlflow.db")
    return f"sqlite:///{work_dir / 'mlflow.db'}"
