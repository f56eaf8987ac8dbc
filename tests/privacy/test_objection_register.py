"""An objection recorded between two batch runs takes effect at once, on every path (GDPR
art. 21; README, privacy section; docs/realtime.md "When a new objection takes effect").

The bank's `consents` table reaches the system with each delivery of its data; an objection
the customer makes in between is recorded in the objection register of the ledger
(`propensity objection record`, `POST /v1/customers/{id}/objection`). On a real generated
bank, with real champions in a real MLflow store, the real `propensity` CLI in subprocesses
and the real `propensity serve` on a loopback port, on SQLite and on PostgreSQL:

1. the objector's next event gets `objected`, no offer, and nothing about it is stored;
2. the next `run`, `score`, `select`, `features` and `train` leave them out, counted as
   objected;
3. their online profile row is gone at once (and the next snapshot does not bring it back);
4. a consents row the bank updates later than the objection lifts it.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from pathlib import Path

import httpx
import polars as pl
import pytest
import sqlalchemy as sa

from features.consent import REGISTER_SCHEMA, profilable, with_objections
from features.io import load_tables
from features.schemas import Tables
from features.timetravel import as_known_at
from propensity.tokens import hash_secret
from tests.online.online_world import (
    DESK_TOKEN,
    EVENTS_TOKEN,
    PRODUCTS,
    Bank,
    Server,
    event,
    make_bank,
    register,
    serving_toml,
    train_bundle,
    write_config,
)

REPO = Path(__file__).resolve().parents[2]
EVENTS = {"Authorization": f"Bearer {EVENTS_TOKEN}"}
DESK = {"Authorization": f"Bearer {DESK_TOKEN}"}


# ---- the rule itself (features.consent.with_objections) --------------------------------------


def _consents(rows: list[tuple[str, bool, datetime | None]]) -> pl.LazyFrame:
    frame = pl.DataFrame(
        {
            "customer_id": [r[0] for r in rows],
            "payment_data_marketing": [r[1] for r in rows],
            "email": [True] * len(rows),
            "sms": [True] * len(rows),
            "post": [True] * len(rows),
            "phone": [True] * len(rows),
            "updated_at": [r[2] for r in rows],
        }
    )
    return Tables.from_frames(consents=frame).consents


def test_the_rule_a_register_objection_wins_unless_the_banks_row_is_newer() -> None:
    at = datetime(2026, 12, 1, 9, 30)
    consents = _consents(
        [
            ("older", True, at - timedelta(days=3)),  # objection stands
            ("same", True, at),  # not later: stands
            ("undated", True, None),  # an undated row is never later: stands
            ("newer", True, at + timedelta(seconds=1)),  # the bank's newer row lifts it
            ("untouched", True, at - timedelta(days=3)),  # not in the register
        ]
    )
    register = pl.DataFrame(
        {"customer_id": ["older", "same", "undated", "newer", "no_row"], "recorded_at": [at] * 5},
        schema=REGISTER_SCHEMA,
    )
    out = with_objections(consents, register).collect().sort("customer_id")
    says = dict(zip(out["customer_id"], out["payment_data_marketing"], strict=True))
    assert says == {
        "older": False,
        "same": False,
        "undated": False,
        "newer": True,
        "untouched": True,
        "no_row": False,  # in the register without a row: an objection row, no "no row"
    }
    stood = out.filter(pl.col("customer_id").is_in(["older", "same", "undated", "no_row"]))
    assert not stood.select(pl.any_horizontal("email", "sms", "post", "phone").any()).item()
    assert set(stood["updated_at"]) == {at}
    assert out.columns == consents.collect_schema().names()
    # an empty register changes nothing, row order included
    empty = pl.DataFrame(schema=REGISTER_SCHEMA)
    assert with_objections(consents, empty).collect().equals(consents.collect())


def test_the_gate_counts_a_register_objector_without_a_consent_row_as_objected() -> None:
    customers = pl.DataFrame(
        {
            "customer_id": ["a", "b"],
            "birth_date": [date(1980, 1, 1)] * 2,
            "customer_since": [date(2020, 1, 1)] * 2,
        }
    )
    tables = Tables.from_frames(customers=customers, consents=_consents([("a", True, None)]))
    register = pl.DataFrame(
        {"customer_id": ["b"], "recorded_at": [datetime(2026, 1, 1)]}, schema=REGISTER_SCHEMA
    )
    before = profilable(tables)
    after = profilable(tables.with_(consents=with_objections(tables.consents, register)))
    assert (before.objected, before.no_consent_row) == (0, 1)
    assert (after.objected, after.no_consent_row) == (1, 0)


def test_objection_record_refuses_bad_input_with_exit_2_naming_it(tmp_path: Path) -> None:
    bad_id = _cli(tmp_path, "objection", "record", "C1\tC2", "--work-dir", str(tmp_path))
    assert bad_id.returncode == 2 and "CUSTOMER_ID" in bad_id.stderr, bad_id.stderr
    assert "Traceback" not in bad_id.stderr
    bad_url = _cli(tmp_path, "objection", "record", "C1", "--ledger-url", "postgres://x/y")
    assert bad_url.returncode == 2 and "--ledger-url" in bad_url.stderr, bad_url.stderr
    assert not list(tmp_path.iterdir())  # nothing written


# ---- the paths: CLI, service, batch, on SQLite and PostgreSQL ------------------------------


@dataclass(frozen=True)
class Bench:
    """A generated bank on disk and a real MLflow store with a champion per product."""

    bank: Bank
    data: Path
    tracking_uri: str
    root: Path


@pytest.fixture(scope="module")
def bench(tmp_path_factory: pytest.TempPathFactory) -> Bench:
    from models.registry import quiet_mlflow

    quiet_mlflow()
    root = tmp_path_factory.mktemp("objection-register")
    bank = make_bank(root)
    work = root / "registry"
    uri = f"sqlite:///{work / 'mlflow.db'}"
    for i, product in enumerate(PRODUCTS):
        register(train_bundle(product, bank.features, seed=i), work, uri, "champion")
    return Bench(bank, root / "bank", uri, root)


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def ledger_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'ledger.sqlite'}"
        return
    from tests.serving.conftest import PgSchemas, pg_base_or_skip

    schemas = PgSchemas(pg_base_or_skip())
    try:
        yield schemas.new_url()
    finally:
        schemas.drop_all()


def _cli(cwd: Path, *args: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "PYTHONPATH": str(REPO), "OMP_NUM_THREADS": "1"}
    env.pop("MLFLOW_TRACKING_URI", None)
    done = subprocess.run(
        [sys.executable, "-m", "propensity.cli", *args],
        capture_output=True,
        text=True,
        env=env,
        cwd=cwd,
        timeout=900,
    )
    return done


def _ok(cwd: Path, *args: str) -> str:
    done = _cli(cwd, *args)
    assert done.returncode == 0, f"{args[0]}: {done.stdout}\n{done.stderr}"
    return " ".join(done.stdout.split())


def _rows(url: str, sql: str, **params: object) -> list[tuple]:
    engine = sa.create_engine(url)
    try:
        with engine.connect() as conn:
            return [tuple(r) for r in conn.execute(sa.text(sql), params)]
    finally:
        engine.dispose()


def _profiles(url: str) -> set[str]:
    return {r[0] for r in _rows(url, "select customer_id from online_profiles")}


def _may_profile(url: str, customer: str) -> bool | None:
    found = _rows(url, "select may_profile from online_consents where customer_id = :c", c=customer)
    return bool(found[0][0]) if found else None


def _decided(url: str, run_like: str, customers: list[str]) -> set[str]:
    rows = _rows(url, "select customer_id, run_id from decisions")
    return {c for c, r in rows if c in customers and r.startswith(run_like)}


def _post_event(server: Server, event_id: str, customer: str, day: date) -> dict:
    answer = httpx.post(
        f"{server.url}/v1/events", json=event(event_id, customer, day), headers=EVENTS, timeout=30
    )
    assert answer.status_code == 200, answer.text
    return dict(answer.json())


def _objected_counts(raw: Tables, as_of: date) -> tuple[int, int]:
    """(objected as a run counts them, as `features` counts them) without the register."""
    return profilable(as_known_at(raw, as_of)).objected, profilable(raw).objected


def test_an_objection_recorded_between_runs_takes_effect_at_once_on_every_path(
    bench: Bench, ledger_url: str, tmp_path: Path
) -> None:
    bank, data = bench.bank, bench.data
    day = bank.as_of
    a, b, c = bank.adults[0], bank.adults[1], bank.adults[2]  # a: CLI, b: HTTP, c: neither
    work = tmp_path / "work"
    work.mkdir()
    tokens = [
        {"name": "stream", "role": "events", "hash": hash_secret(EVENTS_TOKEN)},
        {"name": "desk", "role": "service_desk", "hash": hash_secret(DESK_TOKEN)},
    ]
    config = write_config(
        work / "propensity.toml",
        {
            "work_dir": str(work),
            **serving_toml({"max_contacts": 10}, bank),
            "ledger": {"url": ledger_url},
            "mlflow": {"tracking_uri": bench.tracking_uri},
            "online": {"tokens": tokens, "model_poll_seconds": 60.0},
            "training": {"n_train_snapshots": 2, "min_positives": 2},
        },
    )
    conf = ("--config", str(config))
    raw = load_tables(data).tables
    run_objected = _objected_counts(raw, day)[0]

    # the nightly run before the objection: a, b and c are profiled and in the online store
    _ok(work, "run", *conf, "--data", str(data), "--no-retrain", "--run-id", "night-1")
    assert {a, b, c} <= _profiles(ledger_url)

    server = Server(config, work, work / "server.log")
    try:
        # a objects at the counter (CLI), b on the phone to the service desk (HTTP)
        said = json.loads(_ok(work, "objection", "record", a, *conf, "--json"))
        assert said["customer_id"] == a and said["online_profile_deleted"] is True
        where = f"{server.url}/v1/customers/{b}/objection"
        assert httpx.post(where, timeout=30).status_code == 401
        assert httpx.post(where, headers=EVENTS, timeout=30).status_code == 403
        bad = httpx.post(f"{server.url}/v1/customers/{'x' * 65}/objection", headers=DESK)
        assert bad.status_code == 422 and "customer_id" in bad.text
        answer = httpx.post(where, headers=DESK, timeout=30)
        assert answer.status_code == 200, answer.text
        assert answer.json()["online_profile_deleted"] is True
        assert (
            "/v1/customers/{customer_id}/objection"
            in httpx.get(f"{server.url}/openapi.json").json()["paths"]
        )

        # (3) their online profiles are gone at once; the register holds id, time, source
        assert a not in _profiles(ledger_url) and b not in _profiles(ledger_url)
        assert c in _profiles(ledger_url)
        held = {r[0]: r[1] for r in _rows(ledger_url, "select customer_id, source from objections")}
        assert held == {a: "cli", b: "http"}

        # (1) their next events: objected, no offer, nothing stored about them; c is decided on
        for who in (a, b):
            got = _post_event(server, f"after-{who}", who, day)
            assert (got["decision"], got["reason_code"]) == ("none", "objected")
        other = _post_event(server, f"after-{c}", c, day)
        assert other["reason_code"] not in ("objected", "no_consent_row")
        stored = dict(_rows(ledger_url, "select event_id, customer_id from online_events"))
        assert stored[f"after-{a}"] is None and stored[f"after-{b}"] is None
        assert stored[f"after-{c}"] == c
        assert not _decided(ledger_url, "events-", [a, b])
        assert a not in _profiles(ledger_url) and b not in _profiles(ledger_url)

        # (2) every batch path leaves them out, counted as objected. `score`, `features`,
        # `select` and `train` read the register with the same code on both databases (the
        # loader; `run` below reads it on each): they run on SQLite only, to save minutes
        if ledger_url.startswith("sqlite"):
            _batch_commands_leave_them_out(work, data, conf, day, raw, a, b, c, ledger_url)

        _ok(work, "run", *conf, "--data", str(data), "--no-retrain", "--run-id", "night-2")
        night = json.loads(
            _rows(ledger_url, "select summary from runs where run_id = 'night-2'")[0][0]
        )
        assert night["gates"]["objected"] == run_objected + 2
        assert not _decided(ledger_url, "night-2", [a, b])
        # the next snapshot keeps the objection: no profile, the objection alone
        assert {a, b} & _profiles(ledger_url) == set() and c in _profiles(ledger_url)
        assert _may_profile(ledger_url, a) is False and _may_profile(ledger_url, b) is False

        # (4) the bank's next delivery has a consents row for a updated after the objection
        recorded = datetime.fromisoformat(said["recorded_at"])
        data2 = tmp_path / "bank-next"
        shutil.copytree(data, data2)
        consents = pl.read_parquet(data / "consents.parquet")
        mine = pl.col("customer_id") == a
        consents.with_columns(
            payment_data_marketing=pl.when(mine).then(True).otherwise("payment_data_marketing"),
            updated_at=pl.when(mine)
            .then(pl.lit(recorded + timedelta(minutes=1)))
            .otherwise(pl.col("updated_at")),
        ).write_parquet(data2 / "consents.parquet")
        _ok(work, "run", *conf, "--data", str(data2), "--no-retrain", "--run-id", "night-3")
        assert a in _profiles(ledger_url) and _may_profile(ledger_url, a) is True
        assert b not in _profiles(ledger_url)
        lifted = _post_event(server, f"lifted-{a}", a, day)
        assert lifted["reason_code"] != "objected"
        still = _post_event(server, f"still-{b}", b, day)
        assert still["reason_code"] == "objected"
    finally:
        server.stop()


def _batch_commands_leave_them_out(
    work: Path,
    data: Path,
    conf: tuple[str, ...],
    day: date,
    raw: Tables,
    a: str,
    b: str,
    c: str,
    ledger_url: str,
) -> None:
    """`score`, `features`, `select` (with scores written before the objection) and `train`
    after a and b objected in the register: neither is profiled, both counted as objected."""
    run_objected, all_objected = _objected_counts(raw, day)
    out = _ok(work, "score", str(data), "--as-of", str(day), "--out", "s.parquet", *conf)
    assert f"{run_objected + 2:,} objected" in out, out
    scored = set(pl.read_parquet(work / "s.parquet")["customer_id"])
    assert c in scored and not {a, b} & scored

    out = _ok(work, "features", str(data), "--as-of", str(day), "--out", "f.parquet", *conf)
    assert f"{all_objected + 2:,} customers objected" in out, out
    built = set(pl.read_parquet(work / "f.parquet")["customer_id"])
    assert c in built and not {a, b} & built

    # scores written before the objection still hold a and b: select drops them
    stale = pl.DataFrame(
        {"customer_id": [a, b, c], "product": ["savings"] * 3, "propensity": [0.9] * 3}
    ).with_columns(model_version=pl.lit("1"))
    stale.write_parquet(work / "stale.parquet")
    summary = json.loads(
        _ok(work, "select", str(data), "--as-of", str(day), "--scores", "stale.parquet",
            *conf, "--run-id", "select-1", "--no-reasons", "--json")
    )  # fmt: skip
    assert summary["gates"]["scores_without_consent"] == 2
    assert _decided(ledger_url, "select-1", [a, b, c]) == {c}

    trained = work / "train-mlflow.db"
    _ok(work, "train", str(data), "--products", "savings", *conf,
        "--tracking-uri", f"sqlite:///{trained}")  # fmt: skip
    consenting_raw = profilable(raw).tables.customers.select(pl.len()).collect().item()
    assert _customers_consenting(f"sqlite:///{trained}") == {consenting_raw - 2}


def _customers_consenting(tracking_uri: str) -> set[int]:
    """The `customers_consenting` parameter of the training runs in a store."""
    from mlflow import MlflowClient

    client = MlflowClient(tracking_uri=tracking_uri)
    ids = [e.experiment_id for e in client.search_experiments()]
    runs = [r for r in client.search_runs(ids) if "customers_consenting" in r.data.params]
    assert runs, "no training run logged customers_consenting"
    return {int(r.data.params["customers_consenting"]) for r in runs}


def test_an_objection_recorded_while_a_run_computes_is_kept_by_its_selection_and_snapshot(
    bench: Bench, ledger_url: str, tmp_path: Path
) -> None:
    """The run loaded its tables before the objection: the selection (under the ledger
    lock) and the online snapshot read the register again and leave the customer out."""
    from propensity.config import AppConfig
    from serving.config import Campaign
    from serving.online_store import record_objection
    from serving.pipeline import decide_run

    bank = bench.bank
    a, c = bank.adults[3], bank.adults[4]
    campaign = Campaign(
        id="savings-now", product="savings", channels=("email",), start=date(2020, 1, 1),
        end=date(2030, 12, 31), capacity={"email": 100_000}, min_propensity=0.0,
        control_share=0.0,
    )  # fmt: skip
    config = AppConfig(work_dir=tmp_path, campaigns=(campaign,), ledger={"url": ledger_url})
    engine = config.engine_config(bench.tracking_uri)
    tables = load_tables(bench.data).tables  # loaded before the objection
    scores = pl.DataFrame(
        {"customer_id": [a, c], "product": ["savings"] * 2, "propensity": [0.9] * 2}
    ).with_columns(model_version=pl.lit("1"))

    record_objection(ledger_url, a, "cli")
    result = decide_run(tables, engine, as_of=bank.as_of, run_id="racing", scores=scores)
    assert (
        result.summary.gates["objected"] == profilable(as_known_at(tables, bank.as_of)).objected + 1
    )
    assert _decided(ledger_url, "racing", [a, c]) == {c}

    held = {r[0] for r in _rows(ledger_url, "select customer_id from objections")}
    assert held == {a}
    # the snapshot of a run that scores (features built from the same stale tables)
    decide_run(tables, engine, as_of=bank.as_of, run_id="racing-2")
    assert a not in _profiles(ledger_url) and c in _profiles(ledger_url)
    assert _may_profile(ledger_url, a) is False
