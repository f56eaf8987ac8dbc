"""The nightly job at a bank's size on one machine, on a small generated bank in 3 parts.

- Local, bucket by bucket (forced by a small `[compute] local_memory`, no mock): the same
  decisions, contacts and online snapshot as the local run in one go.
- `[run] retrain = false`: nothing is trained (MLflow holds no new run), the decisions carry
  the champions' versions, a product without a champion is skipped with a note, and with no
  champion at all `propensity run` exits 2 saying to train first.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import polars as pl
import pytest
import sqlalchemy as sa
from mlflow import MlflowClient

from features.config import FeatureConfig
from propensity.compute import (
    BYTES_PER_TRANSACTION,
    ComputeConfig,
    open_compute,
    transaction_parts,
)
from propensity.config import AppConfig
from propensity.job import run_job
from serving.buckets import Buckets, InProcess
from serving.online_store import decode_features
from serving.pipeline import decide_run, load_models, score_all
from tests.compute.world import World, make_world, tight_campaigns

RUN = "local-buckets"


def ledger(work_dir: Path, sql: str) -> pl.DataFrame:
    engine = sa.create_engine(f"sqlite:///{work_dir / 'ledger.sqlite'}")
    try:
        with engine.connect() as conn:
            return pl.read_database(sql, conn, infer_schema_length=None)
    finally:
        engine.dispose()


def decisions(work_dir: Path) -> pl.DataFrame:
    return ledger(work_dir, "select * from decisions").drop("created_at", strict=False)


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> World:
    return make_world(tmp_path_factory.mktemp("nightly"), customers=600, months=18, parts=3)


def test_budget_decides_between_one_go_and_buckets_of_parts(world: World) -> None:
    parts = transaction_parts(world.data_dir)
    assert len(parts) == 3
    need = sum(n for _, n in parts) * BYTES_PER_TRANSACTION
    with open_compute(ComputeConfig(local_memory=f"{need}B"), world.data_dir) as fits:
        assert fits is None
    two = 2 * max(n for _, n in parts) * BYTES_PER_TRANSACTION
    with open_compute(ComputeConfig(local_memory=f"{two}B"), world.data_dir) as grouped:
        assert isinstance(grouped, Buckets) and isinstance(grouped.backend, InProcess)
        assert grouped.parts_per_bucket == 2
    with pytest.raises(ValueError, match="8GiB"):
        ComputeConfig(local_memory="lots")


@pytest.mark.parametrize("budget", ["1KiB", "two parts"])
def test_bucket_by_bucket_equals_one_go(world: World, tmp_path: Path, budget: str) -> None:
    """Same ledger (decisions with scores and reasons, contacts) and the same online profiles,
    whether the parts are buckets of one, buckets of two, or all at once."""
    one_go = decide_run(world.tables, world.engine(tmp_path / "a"), as_of=world.as_of, run_id=RUN)
    if budget == "two parts":
        rows = max(n for _, n in transaction_parts(world.data_dir))
        budget = f"{2 * rows * BYTES_PER_TRANSACTION}B"
    with open_compute(ComputeConfig(local_memory=budget), world.data_dir) as buckets:
        assert isinstance(buckets, Buckets)
        bucketed = decide_run(
            world.tables,
            world.engine(tmp_path / "b"),
            as_of=world.as_of,
            run_id=RUN,
            compute=buckets,
        )
    assert bucketed.summary.counts.equals(one_go.summary.counts)
    order = ["customer_id", "campaign_id"]
    left, right = decisions(tmp_path / "a").sort(order), decisions(tmp_path / "b").sort(order)
    assert left.drop("propensity", "expected_value").equals(
        right.drop("propensity", "expected_value")
    )
    for col in ("propensity", "expected_value"):
        assert (left[col] - right[col]).abs().fill_null(0).max() < 1e-12
    contacts = "select customer_id, product, channel, campaign_id, outcome from contacts"
    assert (
        ledger(tmp_path / "a", contacts)
        .sort(order)
        .equals(ledger(tmp_path / "b", contacts).sort(order))
    )
    assert left.filter(pl.col("outcome") == "selected").height > 0
    profiles = "select customer_id, is_current, child_benefit, in_distress, held from "
    profiles += "online_profiles order by customer_id"
    expected = ledger(tmp_path / "a", profiles)
    assert expected.height == one_go.features.height > 0
    assert ledger(tmp_path / "b", profiles).equals(expected)
    assert bucketed.features is not None and bucketed.features.height == expected.height
    # the stored features (binary, `serving.online_store.encode_features`) are the scored ones
    names = [c for c in one_go.features.columns if c not in ("customer_id", "as_of")]
    for work, frame in ((tmp_path / "a", one_go.features), (tmp_path / "b", bucketed.features)):
        blobs = ledger(work, "select customer_id, features from online_profiles")
        stored = pl.DataFrame(
            [decode_features(b, len(names)) for b in blobs["features"]],
            schema=dict.fromkeys(names, pl.Float64),
            orient="row",
        ).with_columns(customer_id=blobs["customer_id"])
        want = frame.select("customer_id", *(pl.col(n).cast(pl.Float64) for n in names))
        assert stored.sort("customer_id").select(want.columns).equals(want.sort("customer_id"))


def mlflow_runs(uri: str) -> int:
    client = MlflowClient(tracking_uri=uri, registry_uri=uri)
    ids = [e.experiment_id for e in client.search_experiments()]
    return len(client.search_runs(ids)) if ids else 0


def test_scoring_only_run_trains_nothing_and_uses_the_champions(
    world: World, tmp_path: Path
) -> None:
    config = AppConfig.model_validate(
        {
            "work_dir": tmp_path,
            "data": {"path": world.data_dir},
            "run": {"retrain": False, "run_id": "nightly"},
            "mlflow": {"tracking_uri": world.tracking_uri},
            "campaigns": [c.model_dump() for c in tight_campaigns(world.as_of)],
        }
    )
    before = mlflow_runs(world.tracking_uri)
    client = MlflowClient(tracking_uri=world.tracking_uri, registry_uri=world.tracking_uri)
    champions = {
        p: client.get_model_version_by_alias(f"propensity-{p}", "champion").version
        for p in ("savings", "credit_card")
    }
    result = run_job(config, lambda _msg, _done: None)
    assert mlflow_runs(world.tracking_uri) == before
    assert result.training == {}
    made = decisions(tmp_path).filter(pl.col("model_version").is_not_null())
    assert made.height > 0
    used = dict(made.select("product", "model_version").unique().iter_rows())
    assert used == {p: str(v) for p, v in champions.items()}
    assert result.report.exists()


def test_scoring_only_without_any_champion_exits_2(world: World, tmp_path: Path) -> None:
    cfg = tmp_path / "propensity.toml"
    cfg.write_text(
        f'work_dir = "{tmp_path / "work"}"\n[data]\npath = "{world.data_dir}"\n'
        "[run]\nretrain = true\n"
    )
    proc = subprocess.run(
        [sys.executable, "-m", "propensity.cli", "run", "--config", str(cfg), "--no-retrain"],
        capture_output=True,
        text=True,
        cwd=tmp_path,
    )
    assert proc.returncode == 2, proc.stderr
    assert "retrain = false" in proc.stderr and "train first" in proc.stderr
    assert "Traceback" not in proc.stderr
    assert (
        not (tmp_path / "work" / "ledger.sqlite").exists()
        or decisions(tmp_path / "work").is_empty()
    )


def test_propensity_score_follows_compute_like_run(world: World, tmp_path: Path) -> None:
    """`propensity score` with a `[compute] local_memory` too small for one go goes bucket by
    bucket (it says so) and writes the scores of the one-go path, in the same order."""
    cfg = tmp_path / "propensity.toml"
    cfg.write_text(f'work_dir = "{tmp_path}"\n[compute]\nlocal_memory = "1KiB"\n')
    out = tmp_path / "scores.parquet"
    proc = subprocess.run(
        [
            sys.executable, "-m", "propensity.cli", "score", str(world.data_dir),
            "--as-of", world.as_of.isoformat(), "--out", str(out), "--config", str(cfg),
            "--tracking-uri", world.tracking_uri, "--products", "savings,credit_card",
        ],
        capture_output=True,
        text=True,
        cwd=tmp_path,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert "bucket by bucket" in proc.stdout
    models = load_models(["savings", "credit_card"], "champion", world.tracking_uri)
    one_go = score_all(world.tables, world.as_of, FeatureConfig(), models.bundles)
    written = pl.read_parquet(out)
    assert written.height == one_go.scores.height > 0
    assert written.drop("propensity").equals(one_go.scores.drop("propensity"))
    assert (written["propensity"] - one_go.scores["propensity"]).abs().max() < 1e-12
    assert f"of {one_go.customers:,} consenting" in proc.stdout
