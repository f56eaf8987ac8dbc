"""Outcomes import (validation, quarantine, idempotence) and measured uplift from a real SQLite
ledger and real Parquet tables, through the `propensity` command line."""

from __future__ import annotations

import json
import subprocess
import sys
from datetime import date, datetime
from pathlib import Path

import polars as pl
import pytest
from typer.testing import CliRunner

from features.errors import ContractError
from monitoring import run_checks, store
from monitoring.config import MonitoringConfig
from monitoring.fairness import selection_rates
from monitoring.ledger import read_table
from monitoring.outcomes import import_outcomes
from monitoring.uplift import JSON_KEYS
from propensity.cli import app
from serving import ledger as lg
from serving.ledger_io import insert_frame

RUN_1, RUN_2 = date(2026, 3, 1), date(2026, 8, 1)
TODAY = date(2026, 9, 1)


def decisions() -> pl.DataFrame:
    """Run 1 (final by 2026-09-01): campaign sav, 10 treated (T0-T9) and 10 control (K0-K9)
    on email; run 2 (provisional): 4 treated and 4 control."""
    rows = []
    for i in range(10):
        rows.append(("r1", f"T{i}", "sav", "savings", "email", "selected"))
        rows.append(("r1", f"K{i}", "sav", "savings", "email", "control"))
    for i in range(4):
        rows.append(("r2", f"T{i}", "sav", "savings", "post", "selected"))
        rows.append(("r2", f"K{i}", "sav", "savings", "post", "control"))
    rows.append(("r1", "X0", "sav", "savings", None, "holds_product"))
    frame = pl.DataFrame(
        rows,
        schema=["run_id", "customer_id", "campaign_id", "product", "channel", "reason"],
        orient="row",
    )
    return frame.with_columns(
        outcome=pl.when(pl.col("reason").is_in(["selected", "control"]))
        .then(pl.col("reason"))
        .otherwise(pl.lit("suppressed")),
        propensity=pl.lit(0.2),
        expected_value=pl.lit(None, pl.Float64),
        model_version=pl.lit("1"),
        reasons=pl.lit(None, pl.String),
    )


@pytest.fixture()
def world(tmp_path: Path, ledger_url: str) -> tuple[Path, Path, str]:
    """A ledger holding two runs, and a data dir whose products show openings."""
    work = tmp_path / "work"
    url = ledger_url
    engine = lg.make_engine(url)
    with lg.locked(engine) as conn:
        insert_frame(
            conn,
            lg.runs,
            pl.DataFrame(
                {
                    "run_id": ["r1", "r2"],
                    "created_at": [datetime(2026, 3, 1), datetime(2026, 8, 1)],
                    "as_of": [RUN_1, RUN_2],
                    "config_hash": ["h", "h"],
                    "model_versions": ["{}", "{}"],
                    "status": ["complete", "complete"],
                    "summary": ["{}", "{}"],
                }
            ),
        )
        insert_frame(conn, lg.decisions, decisions().select([c.name for c in lg.decisions.columns]))
    engine.dispose()
    data = tmp_path / "data"
    data.mkdir()
    ids = [f"T{i}" for i in range(10)] + [f"K{i}" for i in range(10)] + ["X0"]
    pl.DataFrame(
        {
            "customer_id": ids,
            "birth_date": [date(1980, 1, 1)] * len(ids),
            "customer_since": [date(2020, 1, 1)] * len(ids),
        }
    ).write_parquet(data / "customers.parquet")
    # T0-T3 open within 90 days of run 1, T4 after the window, K0 within: 4/10 vs 1/10
    opened = [("T0", 5), ("T1", 20), ("T2", 60), ("T3", 89), ("T4", 95), ("K0", 30)]
    pl.DataFrame(
        {
            "customer_id": [c for c, _ in opened],
            "product": ["savings"] * len(opened),
            "opened_at": [date.fromordinal(RUN_1.toordinal() + d) for _, d in opened],
            "closed_at": [None] * len(opened),
        },
        schema_overrides={"closed_at": pl.Date},
    ).write_parquet(data / "products.parquet")
    pl.DataFrame(
        {
            "transaction_id": ["t1"],
            "customer_id": ["T0"],
            "booked_at": [datetime(2026, 8, 31, 12)],
            "amount": [10.0],
            "method": ["card"],
        }
    ).write_parquet(data / "transactions.parquet")
    pl.DataFrame(
        {
            "customer_id": ids,
            "payment_data_marketing": True,
            "email": True,
            "sms": True,
            "post": True,
            "phone": True,
        }
    ).write_parquet(data / "consents.parquet")
    return work, data, url


CONFIG = """
[[campaigns]]
id = "sav"
product = "savings"
channels = ["email", "post"]
start = 2026-01-01
end = 2026-12-31
capacity = { email = 10, post = 10 }
value = 150.0
control_share = 0.5
"""
OUTCOMES = """customer_id,campaign_id,run_id,channel,outcome,responded_at
T5,,r1,email,accepted,2026-03-10 09:00:00
T6,sav,,email,declined,2026-03-11 09:00:00
T7,sav,r1,email,no_response,2026-03-12 09:00:00
T8,,r1,fax,accepted,2026-03-12 09:00:00
T9,,,email,accepted,2026-03-12 09:00:00
K1,,r1,email,accepted,2026-03-12 09:00:00
T1,,r1,email,maybe,2026-03-12 09:00:00
T2,,r1,email,accepted,2027-03-12 09:00:00
"""


def test_outcomes_import_quarantines_and_is_idempotent(world: tuple[Path, Path, str]) -> None:
    work, _, url = world
    path = work.parent / "outcomes.csv"
    path.write_text(OUTCOMES)
    first = import_outcomes(path, url, work / "rejected", today=TODAY)
    assert (first.rows, first.added) == (8, 3)
    assert first.rejected_counts == {
        "no_campaign_or_run": 1,
        "no_treated_decision": 1,  # K1 is control: never contacted, cannot respond
        "responded_in_future": 1,
        "unknown_channel": 1,
        "unknown_outcome": 1,
    }
    assert pl.read_parquet(work / "rejected" / "outcomes.rejected.parquet").height == 5
    again = import_outcomes(path, url, work / "rejected", today=TODAY)
    assert (again.added, again.already_present) == (0, 3)


def test_outcomes_import_contract_faults_exit_2(world: tuple[Path, Path, str]) -> None:
    work, _, url = world
    path = work.parent / "bad.csv"
    path.write_text("customer_id,channel,outcome\nT1,email,accepted\n")
    with pytest.raises(ContractError, match=r"outcomes\.responded_at: required column missing"):
        import_outcomes(path, url, today=TODAY)
    cmd = ["outcomes", "import", str(path), "--work-dir", str(work), "--ledger-url", url]
    result = subprocess.run(
        [sys.executable, "-m", "propensity.cli", *cmd], capture_output=True, text=True
    )
    assert result.returncode == 2, result.stderr
    assert "Traceback" not in result.stderr
    assert "outcomes.responded_at: required column missing" in result.stderr


def test_uplift_json_counts_openings_and_accepted_outcomes(world: tuple[Path, Path, str]) -> None:
    work, data, url = world
    path = work.parent / "outcomes.csv"
    path.write_text(OUTCOMES)
    import_outcomes(path, url, today=TODAY)
    config = work.parent / "propensity.toml"
    config.write_text(CONFIG)
    args = ["uplift", "--data", str(data), "--json", "--config", str(config), "--ledger-url", url]
    result = CliRunner().invoke(app, args)
    assert result.exit_code == 0, result.output
    out = json.loads(result.output)
    assert set(out) == {"sav", "overall"}
    assert all(tuple(v) == JSON_KEYS for v in out.values())
    sav = out["sav"]
    # run 1 only (final): treated T0-T3 opened + T5 accepted = 5 of 10; control K0 = 1 of 10
    assert (sav["treated_n"], sav["control_n"], sav["final"]) == (10, 10, True)
    assert sav["treated_rate"] == 0.5 and sav["control_rate"] == 0.1
    assert sav["uplift_rel"] == pytest.approx(4.0)
    assert sav["ci_low"] < 4.0 < sav["ci_high"]
    assert sav["incremental_value"] == pytest.approx(10 * (0.5 - 0.1) * 150.0)
    table = CliRunner().invoke(app, ["uplift", "--data", str(data), "--ledger-url", url])
    assert table.exit_code == 0 and "final" in table.output


def test_fairness_flags_groups_below_four_fifths() -> None:
    config = MonitoringConfig(age_bands=(18, 40), fairness_min_group=5)
    births = (
        {f"Y{i}": date(2000, 1, 1) for i in range(10)}
        | {f"O{i}": date(1960, 1, 1) for i in range(10)}
        | {"M0": date(2015, 1, 1)}
    )  # a minor: never offered anything, so never a group
    customers = pl.DataFrame({"customer_id": list(births), "birth_date": list(births.values())})
    scores = pl.DataFrame({"customer_id": list(births), "product": "savings"})
    won = [f"Y{i}" for i in range(5)] + ["O0", "O1"]  # young 50%, old 20%
    decisions = pl.DataFrame(
        {
            "customer_id": list(births),
            "campaign_id": "sav",
            "product": "savings",
            "outcome": ["selected" if c in won else "suppressed" for c in births],
        }
    )
    rates = selection_rates(decisions, scores, customers, date(2026, 7, 1), config)
    got = {r["grp"]: (r["rate"], r["ratio"], r["warn"]) for r in rates.iter_rows(named=True)}
    assert got == {"18-39": (0.5, 1.0, False), "40+": (0.2, pytest.approx(0.4), True)}


def test_run_checks_store_fairness_and_name_missing_references(
    world: tuple[Path, Path, str], tmp_path: Path
) -> None:
    _, data, url = world
    ids = pl.read_parquet(data / "customers.parquet")
    scores = ids.select(
        "customer_id", product=pl.lit("savings"), propensity=pl.lit(0.2), model_version=pl.lit("1")
    )
    features = ids.select("customer_id", income=pl.lit(1000.0))
    kwargs = {
        "ledger_url": url,
        "run_id": "r1",
        "as_of": RUN_1,
        "features": features,
        "scores": scores,
        "customers": ids,
        "tracking_uri": f"sqlite:///{tmp_path / 'mlflow.db'}",  # no models registered
        "config": MonitoringConfig(fairness_min_group=1),
    }
    checks = run_checks(**kwargs)
    assert checks.notes == ["savings: no drift reference saved with the champion (retrain)"]
    assert checks.drift.is_empty() and checks.shadow.is_empty()
    run_checks(**kwargs)  # a second time replaces, never duplicates
    engine = lg.make_engine(url)
    stored = read_table(engine, store.fairness, ["r1"])
    engine.dispose()
    # 20 of 21 scored adults won a slot in run 1 (10 treated + 10 control): one age band
    assert stored.select("grp", "scored", "selected", "warn").rows() == [("35-49", 21, 20, False)]
