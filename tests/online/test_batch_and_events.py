"""Batch and real time share the caps: a batch selection and a burst of events for the same
customers at the same moment, on SQLite and on PostgreSQL, then every cap checked by SQL."""

from __future__ import annotations

import threading
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime, timedelta
from pathlib import Path

import httpx
import polars as pl
import pytest
import sqlalchemy as sa
from online_world import (
    EVENTS_TOKEN,
    PRODUCTS,
    Bank,
    Registry,
    Server,
    event,
    serving_toml,
    snapshot,
    write_config,
)

from models.registry import load_bundle
from propensity.config import validate_config
from serving.batch import run_selection
from serving.scoring import score_features

EVENTS = {"Authorization": f"Bearer {EVENTS_TOKEN}"}
POLICY = {"max_contacts": 1, "contacts_window_days": 30, "max_phone": 1, "phone_window_days": 90}


def _violations(url: str, bank: Bank) -> dict[str, list[tuple]]:
    """Every cap of the policy, checked on the ledger's contacts around the day."""

    def window(days: int) -> dict[str, datetime]:
        mid = datetime.combine(bank.as_of, datetime.min.time())
        return {"lo": mid - timedelta(days=days - 1), "hi": mid + timedelta(days=days)}

    checks = {
        "contacts per 30 days": (
            "select customer_id, count(*) from contacts where contacted_at >= :lo and "
            "contacted_at < :hi group by customer_id having count(*) > 1",
            window(30),
        ),
        "phone calls per 90 days": (
            "select customer_id, count(*) from contacts where channel = 'phone' and "
            "contacted_at >= :lo and contacted_at < :hi group by customer_id having count(*) > 1",
            window(90),
        ),
        "same product within 90 days": (
            "select customer_id, product, count(*) from contacts where contacted_at >= :lo and "
            "contacted_at < :hi group by customer_id, product having count(*) > 1",
            window(90),
        ),
    }
    engine = sa.create_engine(url)
    try:
        with engine.connect() as conn:
            return {
                name: [tuple(r) for r in conn.execute(sa.text(q), p)]
                for name, (q, p) in checks.items()
            }
    finally:
        engine.dispose()


def _count(url: str, query: str) -> list[tuple]:
    engine = sa.create_engine(url)
    try:
        with engine.connect() as conn:
            return [tuple(r) for r in conn.execute(sa.text(query))]
    finally:
        engine.dispose()


@pytest.mark.parametrize(
    "backend", ["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)]
)
def test_a_batch_run_and_an_event_burst_at_the_same_moment_share_every_cap(
    backend: str,
    request: pytest.FixtureRequest,
    tmp_path: Path,
    bank: Bank,
    registry: Registry,
    token_table: list[dict[str, str]],
) -> None:
    if backend == "sqlite":
        url = f"sqlite:///{tmp_path / 'ledger.sqlite'}"
    else:
        new_url: Callable[[], str] = request.getfixturevalue("pg_url_factory")
        url = new_url()
    snapshot(bank, url)
    data = {
        **serving_toml(POLICY, bank),
        "ledger": {"url": url},
        "mlflow": {"tracking_uri": registry.tracking_uri},
        "online": {"tokens": token_table},
    }
    app = validate_config(data, "test")
    server = Server(write_config(tmp_path / "propensity.toml", data), tmp_path, tmp_path / "log")
    try:
        bundles = {p: load_bundle(p, "champion", registry.tracking_uri) for p in PRODUCTS}
        customers = bank.adults[:40]
        # the batch scores everybody but customers[20:]: those only events can contact, the
        # first 20 both paths contend for
        scores = score_features(bank.features, bundles).filter(
            ~pl.col("customer_id").is_in(customers[20:])
        )
        bodies = [event(f"{c}-{i}", c, bank.as_of) for i in range(2) for c in customers]
        bodies += bodies[:10]  # replays in the same burst
        start = threading.Barrier(2)

        def batch() -> None:
            start.wait()
            run_selection(
                bank.tables,
                scores,
                list(app.campaigns),
                app.serving_config(),
                as_of=bank.as_of,
                run_id="batch-same-moment",
                out_dir=tmp_path / "out",
                ledger_url=url,
            )

        def post(body: dict) -> httpx.Response:
            return httpx.post(f"{server.url}/v1/events", json=body, headers=EVENTS, timeout=60)

        with ThreadPoolExecutor(max_workers=9) as pool:
            batch_done = pool.submit(batch)
            start.wait()
            answers = list(pool.map(post, bodies))
            batch_done.result()
    finally:
        server.stop()
    assert all(a.status_code == 200 for a in answers), [
        a.text for a in answers if a.status_code != 200
    ]
    by_id: dict[str, dict] = {}
    for a in answers:
        body = a.json()
        assert by_id.setdefault(body["event_id"], body) == body  # a replay: the same answer
    assert _violations(url, bank) == {
        "contacts per 30 days": [],
        "phone calls per 90 days": [],
        "same product within 90 days": [],
    }
    # both paths wrote contacts, and each event id was decided exactly once
    sources = dict(_count(url, "select source, count(*) from contacts group by source"))
    assert sources.get("run", 0) > 0 and sources.get("event", 0) > 0, sources
    assert _count(url, "select count(*), count(distinct event_id) from online_events") == [(80, 80)]
    codes = {b["reason_code"] for b in by_id.values()}
    assert "contact_cap" in codes or "cooldown_product" in codes, codes
