"""Model reload when the registry alias moves (no request dropped), and `propensity token
create` / `propensity serve` from the command line."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx
import pytest
import sqlalchemy as sa
from online_world import (
    EVENTS_TOKEN,
    REPO,
    Bank,
    Registry,
    Server,
    event,
    register,
    serving_toml,
    snapshot,
    train_bundle,
    write_config,
)

from propensity.config import load_config
from propensity.tokens import matches

EVENTS = {"Authorization": f"Bearer {EVENTS_TOKEN}"}


def _cli(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    return subprocess.run(
        [sys.executable, "-m", "propensity.cli", *args],
        capture_output=True,
        text=True,
        cwd=cwd,
        env=env,
        timeout=120,
    )


def test_the_alias_moves_and_the_server_swaps_models_without_dropping_a_request(
    tmp_path: Path, bank: Bank, registry: Registry, token_table: list[dict[str, str]]
) -> None:
    shutil.copy(registry.db, tmp_path / "mlflow.db")  # a registry of its own (artifacts shared)
    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    ledger = f"sqlite:///{tmp_path / 'ledger.sqlite'}"
    snapshot(bank, ledger)
    config = write_config(
        tmp_path / "propensity.toml",
        {
            **serving_toml({"max_contacts": 1000, "product_cooldown_days": 0}, bank),
            "ledger": {"url": ledger},
            "mlflow": {"tracking_uri": uri},
            "online": {"tokens": token_table, "model_poll_seconds": 0.3},
        },
    )
    server = Server(config, tmp_path, tmp_path / "log")
    statuses: list[int] = []
    stop = threading.Event()

    def keep_posting() -> None:
        i = 0
        while not stop.is_set():
            customer = bank.adults[i % 20]
            body = event(
                f"load-{i}",
                customer,
                bank.as_of,
                amount=60_000.0,
                method="transfer",
                counterparty_name="Notaris Jansen",
                mcc=None,
                location=None,
            )
            statuses.append(
                httpx.post(
                    f"{server.url}/v1/events", json=body, headers=EVENTS, timeout=30
                ).status_code
            )
            i += 1

    poster = threading.Thread(target=keep_posting)
    try:
        assert httpx.get(f"{server.url}/readyz").json()["models"]["savings"] == "1"
        poster.start()
        time.sleep(0.5)
        new = register(
            train_bundle("savings", bank.features, seed=99), registry.work_dir, uri, "champion"
        )
        assert new == "2"
        deadline = time.monotonic() + 30
        while httpx.get(f"{server.url}/readyz").json()["models"]["savings"] != "2":
            assert time.monotonic() < deadline, "the server never loaded version 2"
            time.sleep(0.2)
        time.sleep(0.5)
        stop.set()
        poster.join()
        last = event(
            "after-swap",
            bank.adults[30],
            bank.as_of,
            amount=60_000.0,
            method="transfer",
            counterparty_name="Notaris Jansen",
            mcc=None,
            location=None,
        )
        assert httpx.post(f"{server.url}/v1/events", json=last, headers=EVENTS).status_code == 200
    finally:
        stop.set()
        if poster.is_alive():
            poster.join()
        server.stop()
    assert len(statuses) > 3 and set(statuses) == {200}
    engine = sa.create_engine(ledger)
    with engine.connect() as conn:
        versions = {
            r[0] for r in conn.execute(sa.text("select distinct model_version from decisions"))
        }
        latest = conn.execute(
            sa.text("select model_version from decisions where customer_id = :c"),
            {"c": bank.adults[30]},
        ).scalar_one()
    engine.dispose()
    assert versions == {"1", "2"} and latest == "2"


def test_two_server_processes_share_the_port_and_the_ledger(
    tmp_path: Path, bank: Bank, registry: Registry, token_table: list[dict[str, str]]
) -> None:
    """`propensity serve --workers 2`: each process loads the models (slower than uvicorn's
    5 s health ping on a busy machine: its workers were once killed as hung, over and over)
    and answers; every event is decided once, a replay on either process gets the same answer."""
    ledger = f"sqlite:///{tmp_path / 'ledger.sqlite'}"
    snapshot(bank, ledger)
    config = write_config(
        tmp_path / "propensity.toml",
        {
            **serving_toml({"max_contacts": 1000, "product_cooldown_days": 0}, bank),
            "ledger": {"url": ledger},
            "mlflow": {"tracking_uri": f"sqlite:///{registry.db}"},
            "online": {"tokens": token_table},
        },
    )
    server = Server(config, tmp_path, tmp_path / "log", workers=2)
    bodies = [event(f"two-{i}", bank.adults[i], bank.as_of) for i in range(24)]
    try:
        deadline = time.monotonic() + 120
        while httpx.get(f"{server.url}/readyz").status_code != 200:
            assert time.monotonic() < deadline, (tmp_path / "log").read_text()
            time.sleep(0.3)

        def post(body: dict) -> tuple[int, dict]:
            # a new connection per request: the kernel hands them to either process
            r = httpx.post(f"{server.url}/v1/events", json=body, headers=EVENTS, timeout=60)
            return r.status_code, r.json()

        with ThreadPoolExecutor(max_workers=8) as pool:
            first = list(pool.map(post, bodies))
            again = list(pool.map(post, bodies))
        assert server.proc.poll() is None
    finally:
        server.stop()
    assert {status for status, _ in first + again} == {200}
    assert [answer for _, answer in first] == [answer for _, answer in again]
    log = (tmp_path / "log").read_text()
    assert log.count("Started server process") == 2 and "died" not in log
    engine = sa.create_engine(ledger)
    with engine.connect() as conn:
        stored = conn.execute(sa.text("select count(*) from online_events")).scalar_one()
    engine.dispose()
    assert stored == len(bodies)


def test_token_create_prints_the_secret_once_and_stores_only_its_salted_hash(
    tmp_path: Path,
) -> None:
    config = tmp_path / "propensity.toml"
    config.write_text("# my settings\n[policy]\nmax_contacts = 2\n")
    made = _cli(
        "token",
        "create",
        "kafka-consumer",
        "--role",
        "events",
        "--config",
        str(config),
        cwd=tmp_path,
    )
    assert made.returncode == 0, made.stderr
    secret = made.stdout.strip()
    assert made.stdout == secret + "\n" and len(secret) >= 40
    text = config.read_text()
    assert secret not in text and "# my settings" in text and "max_contacts = 2" in text
    (token,) = load_config(config).online.tokens
    assert token.name == "kafka-consumer" and token.role == "events"
    assert matches(secret, token.hash) and not matches(secret + "x", token.hash)
    other = _cli(
        "token", "create", "desk", "--role", "service_desk", "--config", str(config), cwd=tmp_path
    )
    second = load_config(config).online.tokens[1]
    assert second.hash.split("$")[1] != token.hash.split("$")[1]  # a fresh salt each time
    assert matches(other.stdout.strip(), second.hash)


@pytest.mark.parametrize(
    ("args", "names"),
    [
        (["token", "create", "x", "--role", "admin"], "--role"),
        (["token", "create", "stream", "--role", "events"], "NAME"),
        (["serve"], "online.tokens"),
        (["serve"], "ledger.url"),
    ],
)
def test_cli_mistakes_exit_2_with_one_line(
    tmp_path: Path, args: list[str], names: str, token_table: list[dict[str, str]]
) -> None:
    config = write_config(tmp_path / "propensity.toml", {"policy": {"max_contacts": 2}})
    if "NAME" in names:  # a token of that name exists already
        write_config(config, {"online": {"tokens": token_table}})
    if names == "ledger.url":  # the old postgres:// scheme SQLAlchemy does not know
        ledger = {"url": "postgres://nobody@127.0.0.1:1/none"}
        write_config(config, {"online": {"tokens": token_table}, "ledger": ledger})
    done = _cli(*args, "--config", str(config), cwd=tmp_path)
    assert done.returncode == 2, done.stderr
    assert names in done.stderr and "Traceback" not in done.stderr
    assert len(done.stderr.strip().splitlines()) == 1


def test_serve_refuses_models_trained_on_other_feature_settings(
    tmp_path: Path, registry: Registry, token_table: list[dict[str, str]]
) -> None:
    config = write_config(
        tmp_path / "propensity.toml",
        {
            "features": {"windows": [30, 90]},
            "mlflow": {"tracking_uri": registry.tracking_uri},
            "online": {"tokens": token_table},
        },
    )
    done = _cli("serve", "--config", str(config), "--port", "1", cwd=tmp_path)
    assert done.returncode == 2, done.stderr
    assert "other feature settings" in done.stderr and "windows" in done.stderr
    assert "Traceback" not in done.stderr
