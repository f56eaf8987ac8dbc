"""`propensity run` end to end on a small synthetic bank, as the batch job runs it: every
artifact is there and they agree with each other."""

from __future__ import annotations

import json
import os
import sqlite3
import subprocess
import sys
from pathlib import Path

import mlflow
import polars as pl
import pytest

from features.schemas import DEFAULT_PRODUCTS

SMALL = """
[synthetic]
customers = 3000
months = 24
seed = 5

[training]
n_train_snapshots = 6
min_positives = 5

[run]
run_id = "e2e"
"""


def run_cli(config: Path, work: Path) -> subprocess.CompletedProcess[str]:
    """`propensity run` as the batch job calls it, with the default (embedded) MLflow store."""
    env = {k: v for k, v in os.environ.items() if k != "MLFLOW_TRACKING_URI"}
    cmd = ["propensity.cli", "run", "--config", str(config), "--work-dir", str(work)]
    return subprocess.run(
        [sys.executable, "-m", *cmd], capture_output=True, text=True, env=env, timeout=600
    )


@pytest.fixture(scope="module")
def job(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, subprocess.CompletedProcess[str]]:
    work = tmp_path_factory.mktemp("run")
    config = work / "propensity.toml"
    config.write_text(SMALL)
    return work / "w", run_cli(config, work / "w")


def test_run_succeeds_and_says_where_everything_is(
    job: tuple[Path, subprocess.CompletedProcess[str]],
) -> None:
    _, proc = job
    assert proc.returncode == 0, proc.stderr[-3000:]
    for word in ("ledger", "MLflow", "report", "channel files"):
        assert word in proc.stdout


def test_four_champions_in_the_registry(job: tuple[Path, subprocess.CompletedProcess[str]]) -> None:
    work, _ = job
    client = mlflow.MlflowClient(tracking_uri=f"sqlite:///{work / 'mlflow.db'}")
    for product in DEFAULT_PRODUCTS:
        version = client.get_model_version_by_alias(f"propensity-{product}", "champion")
        assert int(version.version) >= 1


def _ledger(work: Path, sql: str) -> pl.DataFrame:
    with sqlite3.connect(work / "ledger.sqlite") as con:
        cur = con.execute(sql)
        cols = [c[0] for c in cur.description]
        return pl.DataFrame(cur.fetchall(), schema=cols, orient="row")


def test_channel_files_agree_with_the_ledger(
    job: tuple[Path, subprocess.CompletedProcess[str]],
) -> None:
    work, _ = job
    files = sorted((work / "out" / "e2e").glob("*.csv"))
    assert {f.stem for f in files} == {"email", "sms", "post", "phone"}
    sent = pl.concat([pl.read_csv(f, schema_overrides={"customer_id": pl.String}) for f in files])
    assert sent.height > 0
    selected = _ledger(
        work,
        "select customer_id, campaign_id, channel from decisions"
        " where run_id='e2e' and outcome='selected'",
    )
    contacts = _ledger(
        work, "select customer_id, campaign_id, channel from contacts where run_id='e2e'"
    )
    key = ["customer_id", "campaign_id", "channel"]
    assert sent.select(key).sort(key).equals(selected.sort(key))
    assert contacts.sort(key).equals(selected.sort(key))
    assert sent["customer_id"].is_unique().all()  # at most one offer per customer per run
    assert sent["reasons"].str.len_chars().min() > 0  # every offer carries its reasons
    run = _ledger(work, "select status, published_at from runs where run_id='e2e'")
    assert run["status"].to_list() == ["complete"]
    assert run["published_at"].null_count() == 0  # committed, then its files published


def test_nobody_without_consent_or_permission_is_contacted(
    job: tuple[Path, subprocess.CompletedProcess[str]],
) -> None:
    work, _ = job
    bank = next(work.glob("bank-*"))
    consents = pl.read_parquet(bank / "consents.parquet")
    sent = pl.concat(
        [
            pl.read_csv(f, schema_overrides={"customer_id": pl.String})
            for f in (work / "out" / "e2e").glob("*.csv")
        ]
    )
    joined = sent.join(consents, on="customer_id", how="left")
    assert joined["payment_data_marketing"].null_count() == 0
    assert joined["payment_data_marketing"].all()
    for channel in ("email", "sms", "post", "phone"):
        assert joined.filter(pl.col("channel") == channel)[channel].all()


def test_report_is_written_with_embedded_plots(
    job: tuple[Path, subprocess.CompletedProcess[str]],
) -> None:
    work, _ = job
    html = (work / "reports" / "e2e.html").read_text()
    assert html.count("data:image/png;base64,") >= 4 * 4
    for product in DEFAULT_PRODUCTS:
        assert product in html


def test_same_run_id_again_is_refused(job: tuple[Path, subprocess.CompletedProcess[str]]) -> None:
    work, _ = job
    proc = run_cli(work.parent / "propensity.toml", work)
    assert proc.returncode == 2
    assert "e2e" in proc.stderr and "Traceback" not in proc.stderr


def cli(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "propensity.cli", *args], capture_output=True, text=True, timeout=300
    )


def test_score_select_explain_commands_on_the_registered_champions(
    job: tuple[Path, subprocess.CompletedProcess[str]], tmp_path: Path
) -> None:
    work, _ = job
    bank = next(work.glob("bank-*"))
    uri = f"sqlite:///{work / 'mlflow.db'}"
    scores_path = tmp_path / "scores.parquet"
    proc = cli(
        "score",
        str(bank),
        "--as-of",
        "2026-11-01",
        "--out",
        str(scores_path),
        "--tracking-uri",
        uri,
    )
    assert proc.returncode == 0, proc.stderr[-2000:]
    scores = pl.read_parquet(scores_path)
    assert set(scores["product"]) == set(DEFAULT_PRODUCTS)
    assert scores["propensity"].is_between(0, 1).all()
    consents = pl.read_parquet(bank / "consents.parquet")
    allowed = consents.filter(pl.col("payment_data_marketing"))["customer_id"]
    assert scores["customer_id"].is_in(allowed.implode()).all()  # objectors are never scored

    proc = cli(
        "select", str(bank), "--as-of", "2026-11-01", "--scores", str(scores_path),
        "--work-dir", str(tmp_path / "w"), "--tracking-uri", uri, "--run-id", "cli", "--json",
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr[-2000:]
    sent = pl.read_csv(
        tmp_path / "w" / "out" / "cli" / "email.csv", schema_overrides={"customer_id": pl.String}
    )
    # --work-dir alone (no --tracking-uri, no MLFLOW_TRACKING_URI): the champions of the
    # MLflow store under that work dir give the reasons
    env = {k: v for k, v in os.environ.items() if k != "MLFLOW_TRACKING_URI"}
    proc = subprocess.run(
        [sys.executable, "-m", "propensity.cli", "select", str(bank), "--as-of", "2026-11-01",
         "--scores", str(scores_path), "--work-dir", str(work), "--dry-run", "--json"],
        capture_output=True, text=True, timeout=300, env=env,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert "no champion" not in proc.stdout and "carry no reasons" not in proc.stdout
    if sent.height:
        customer = sent["customer_id"][0]
        proc = cli("explain", customer, "--work-dir", str(tmp_path / "w"), "--json")
        assert proc.returncode == 0, proc.stderr[-2000:]
        held = json.loads(proc.stdout)  # {customer_id, decisions, contacts}
        decisions = [d for d in held["decisions"] if d["run_id"] == "cli"]
        assert any(c["run_id"] == "cli" for c in held["contacts"])
        (decision,) = [d for d in decisions if d["outcome"] == "selected"]
        assert decision["channel"] == "email"
        assert decision["reasons"].splitlines() == sent["reasons"][0].split(" | ")


def _objectors(bank: Path) -> set[str]:
    """Customers who objected or have no consent row: they must never come out anywhere."""
    customers = pl.read_parquet(bank / "customers.parquet")["customer_id"]
    consents = pl.read_parquet(bank / "consents.parquet")
    ok = set(consents.filter(pl.col("payment_data_marketing"))["customer_id"])
    out = set(customers) - ok
    assert out, "the synthetic bank must hold objectors for this test to mean anything"
    return out


def test_no_objector_id_comes_out_of_run_score_select_report_or_explain(
    job: tuple[Path, subprocess.CompletedProcess[str]], tmp_path: Path
) -> None:
    """README, privacy: objectors are never profiled, scored or offered, on any path."""
    work, proc = job
    assert proc.returncode == 0, proc.stderr[-3000:]
    bank = next(work.glob("bank-*"))
    objectors = _objectors(bank)
    decided = _ledger(work, "select distinct customer_id from decisions")["customer_id"]
    contacted = _ledger(work, "select distinct customer_id from contacts where source='run'")
    assert not objectors & set(decided)
    assert not objectors & set(contacted["customer_id"])
    for f in (work / "out" / "e2e").glob("*.csv"):
        sent = pl.read_csv(f, schema_overrides={"customer_id": pl.String})
        assert not objectors & set(sent["customer_id"]), f.name
    report = (work / "reports" / "e2e.html").read_text()
    assert not [c for c in objectors if c in report]
    scores_path = tmp_path / "scores.parquet"
    uri = f"sqlite:///{work / 'mlflow.db'}"
    proc = cli("score", str(bank), "--as-of", "2026-11-01", "--out", str(scores_path),
               "--work-dir", str(work), "--tracking-uri", uri)  # fmt: skip
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert not objectors & set(pl.read_parquet(scores_path)["customer_id"])
    proc = cli("select", str(bank), "--as-of", "2026-11-01", "--scores", str(scores_path),
               "--work-dir", str(tmp_path / "w"), "--tracking-uri", uri,
               "--dry-run", "--json")  # fmt: skip
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert not [c for c in objectors if c in proc.stdout]
    some = sorted(objectors)[0]
    proc = cli("explain", some, "--work-dir", str(work), "--json")
    assert proc.returncode in (0, 2), proc.stderr[-2000:]
    if proc.returncode == 0:  # an access request shows the imported contacts, no decision
        assert json.loads(proc.stdout)["decisions"] == []


def test_run_output_reads_well_in_a_log(job: tuple[Path, subprocess.CompletedProcess[str]]) -> None:
    """Not a terminal: one plain line per step with its duration, nothing cut, no colour codes."""
    _, proc = job
    for stage in ("validating the input tables", "features and scores", "online snapshot"):
        assert f"step finished: {stage} in " in proc.stdout  # the per-stage timings
    assert "step finished: selection, ledger and channel files in " in proc.stdout
    assert "step started: compute: local, in one go (" in proc.stdout  # where, and why
    assert "\x1b[" not in proc.stdout and "…" not in proc.stdout
    for product in DEFAULT_PRODUCTS:  # model quality per product in the summary
        assert product in proc.stdout
    assert "ROC-AUC" in proc.stdout
