"""`propensity train` end to end on a generated bank: real Parquet files, the real feature
pipeline, real LightGBM and a real MLflow store; checks calibration on the test snapshot."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from models.registry import load_bundle

PRODUCTS = ("savings", "credit_card")


@pytest.fixture(scope="module")
def medium_bank(tmp_path_factory: pytest.TempPathFactory) -> Path:
    from synthbank import generate

    out = tmp_path_factory.mktemp("bank") / "data"
    generate(customers=5000, months=24, seed=11, out=out)
    return out


def _propensity(*args: str) -> subprocess.CompletedProcess[str]:
    exe = Path(sys.executable).with_name("propensity")
    return subprocess.run([str(exe), *args], capture_output=True, text=True, timeout=600)


def test_train_command_writes_calibrated_metrics_and_registers(medium_bank: Path, store):
    work_dir, uri = store
    config = work_dir / "propensity.toml"
    config.write_text("[training]\nn_train_snapshots = 6\n")
    metrics = work_dir / "metrics.json"
    done = _propensity(
        "train", str(medium_bank), "--products", ",".join(PRODUCTS), "--work-dir", str(work_dir),
        "--metrics-out", str(metrics), "--config", str(config),
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    result = json.loads(metrics.read_text())
    assert set(result) == set(PRODUCTS)
    for product in PRODUCTS:
        m = result[product]
        assert m["model_version"] == "1"
        assert m["ece"] < 0.02, (product, m)
        assert m["roc_auc"] > 0.6 and m["oracle_roc_auc"] is not None
        assert m["n_pos_test"] > 20
        assert load_bundle(product, tracking_uri=uri).version == "1"


def test_train_command_rejects_a_test_date_without_a_complete_horizon(medium_bank: Path, tmp_path):
    done = _propensity(
        "train", str(medium_bank), "--work-dir", str(tmp_path), "--test-as-of", "2026-10-01"
    )
    assert done.returncode == 2
    assert "2026-10-01" in done.stderr and "Traceback" not in done.stderr
