"""The real `propensity serve` (uvicorn, subprocess, free loopback port) on an SQLite ledger:
every endpoint, every gate, auth, idempotency, malformed input and what the logs hold."""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import date, timedelta
from pathlib import Path

import httpx
import polars as pl
import pytest
import sqlalchemy as sa
from online_world import (
    DESK_TOKEN,
    EVENTS_TOKEN,
    Bank,
    Registry,
    Server,
    event,
    serving_toml,
    snapshot,
    write_config,
)

from serving import online_store as store
from serving.arbitration import CONTROL_DRAW_SCHEME
from serving.batch import run_selection
from serving.config import Campaign, ContactPolicy, ServingConfig

EVENTS = {"Authorization": f"Bearer {EVENTS_TOKEN}"}
DESK = {"Authorization": f"Bearer {DESK_TOKEN}"}


@dataclass
class World:
    server: Server
    ledger: str
    bank: Bank
    offer: str  # gets an airport offer
    special: str  # sends a pharmacy payment
    refused: str  # permits no channel of the travel campaigns
    minor: str  # twelve years old
    capped: str  # contacted by the batch run this morning (cap: 1 contact per 30 days)
    grocer: str  # pays at a supermarket (no trigger)


def _prepared_tables(bank: Bank, w: dict[str, str]):  # type: ignore[no-untyped-def]
    refused = pl.col("customer_id") == w["refused"]
    consents = bank.tables.consents.with_columns(
        [
            pl.when(refused).then(False).otherwise(pl.col(c)).alias(c)
            for c in ("email", "sms", "post")
        ]
    )
    twelve = date(bank.as_of.year - 12, 1, 1)
    customers = bank.tables.customers.with_columns(
        birth_date=pl.when(pl.col("customer_id") == w["minor"])
        .then(pl.lit(twelve))
        .otherwise(pl.col("birth_date"))
    )
    return bank.tables.with_(consents=consents, customers=customers)


def _morning_batch(bank: Bank, tables, ledger: str, customer: str, out: Path) -> None:  # type: ignore[no-untyped-def]
    """A batch run on the event day that contacts `customer` about savings."""
    savings = Campaign(
        id="savings-batch",
        product="savings",
        channels=("email",),
        start=date(2020, 1, 1),
        end=date(2030, 12, 31),
        capacity={"email": 100},
        control_share=0.0,
    )
    scores = pl.DataFrame(
        {
            "customer_id": [customer],
            "product": ["savings"],
            "propensity": [0.9],
            "model_version": ["1"],
        }
    )
    tables = tables.with_(products=tables.products.filter(pl.col("customer_id") != customer))
    summary = run_selection(
        tables,
        scores,
        [savings],
        ServingConfig(policy=ContactPolicy(max_contacts=1)),
        as_of=bank.as_of,
        run_id="batch-morning",
        out_dir=out,
        ledger_url=ledger,
    )
    assert summary.n("selected") == 1, summary.counts


@pytest.fixture(scope="module")
def world(
    tmp_path_factory: pytest.TempPathFactory,
    bank: Bank,
    registry: Registry,
    token_table: list[dict[str, str]],
) -> Iterator[World]:
    work = tmp_path_factory.mktemp("service")
    ledger = f"sqlite:///{work / 'ledger.sqlite'}"
    a = bank.adults
    who = {
        "offer": a[0],
        "special": a[1],
        "refused": a[2],
        "minor": a[3],
        "capped": a[4],
        "grocer": a[5],
    }
    tables = _prepared_tables(bank, who)
    _morning_batch(bank, tables, ledger, who["capped"], work / "out")
    snapshot(bank, ledger, tables)
    config = write_config(
        work / "propensity.toml",
        {
            **serving_toml({"max_contacts": 1}, bank),
            "ledger": {"url": ledger},
            "mlflow": {"tracking_uri": registry.tracking_uri},
            "online": {"tokens": token_table, "model_poll_seconds": 60.0},
        },
    )
    server = Server(config, work, work / "server.log")
    try:
        yield World(server, ledger, bank, **who)
    finally:
        server.stop()


def _post(world: World, body: dict, headers: dict[str, str] = EVENTS) -> httpx.Response:
    return httpx.post(f"{world.server.url}/v1/events", json=body, headers=headers, timeout=30)


def _decide(world: World, event_id: str, customer: str, **extra: object) -> dict:
    response = _post(world, event(event_id, customer, world.bank.as_of, **extra))
    assert response.status_code == 200, response.text
    return response.json()


def _sql(world: World, query: str, **params: object) -> list[tuple]:
    engine = sa.create_engine(world.ledger)
    try:
        with engine.connect() as conn:
            return [tuple(r) for r in conn.execute(sa.text(query), params)]
    finally:
        engine.dispose()


def _profile(world: World, customer: str) -> store.Profile:
    engine = sa.create_engine(world.ledger)
    try:
        with engine.connect() as conn:
            run_id = conn.execute(sa.select(store.snapshots.c.run_id)).scalar_one()
            names = store.feature_names(conn, run_id)
            return store.read_profiles(conn, [customer], names)[customer]
    finally:
        engine.dispose()


def test_health_readiness_and_published_api(world: World) -> None:
    url = world.server.url
    assert httpx.get(f"{url}/healthz").json() == {"status": "ok"}
    ready = httpx.get(f"{url}/readyz")
    assert ready.status_code == 200, ready.text
    assert sorted(ready.json()["models"]) == [
        "child_savings",
        "credit_card",
        "insurance",
        "savings",
    ]
    spec = httpx.get(f"{url}/openapi.json").json()
    assert {"/v1/events", "/v1/customers/{customer_id}/decisions"} <= set(spec["paths"])
    assert "event_id" in spec["components"]["schemas"]["Event"]["properties"]
    assert httpx.get(f"{url}/docs").status_code == 200


def test_tokens_and_roles(world: World) -> None:
    body = event("auth-1", world.offer, world.bank.as_of)
    missing = _post(world, body, headers={})
    assert missing.status_code == 401 and missing.headers["www-authenticate"] == "Bearer"
    assert _post(world, body, headers={"Authorization": "Bearer nope"}).status_code == 401
    assert _post(world, body, headers={"Authorization": f"Basic {EVENTS_TOKEN}"}).status_code == 401
    assert _post(world, body, headers=DESK).status_code == 403
    decisions = f"{world.server.url}/v1/customers/{world.offer}/decisions"
    assert httpx.get(decisions).status_code == 401
    assert httpx.get(decisions, headers=EVENTS).status_code == 403
    assert httpx.get(f"{world.server.url}/metrics").status_code == 401
    # nothing above reached the engine: the event id is still unknown
    assert _sql(world, "select count(*) from online_events where event_id = 'auth-1'") == [(0,)]


def test_airport_payment_gets_an_offer_once_and_a_replay_gets_the_stored_answer(
    world: World,
) -> None:
    before = _profile(world, world.offer)
    first = _decide(world, "trip-1", world.offer)
    assert first["decision"] == "offer" and first["reason_code"] == "selected"
    assert first["product"] in ("insurance", "credit_card") and first["channel"] in (
        "email",
        "sms",
        "post",
    )
    assert first["reasons"][0].startswith("card payment at an airport or abroad")
    assert len(first["reasons"]) > 1  # the model's own reasons follow
    again = _decide(world, "trip-1", world.offer)
    assert again == first
    contacts = _sql(
        world,
        "select count(*) from contacts where customer_id = :c and source = 'event'",
        c=world.offer,
    )
    assert contacts == [(1,)]
    # the features now count the airport payment (refreshed at event time)
    after = _profile(world, world.offer)
    assert after.features_as_of == world.bank.as_of + timedelta(days=1)
    for w in (30, 90, 365):
        name = f"airport_txn_count_{w}d"
        assert after.features[name] == before.features[name] + 1
    assert after.features["days_since_last_airport"] == 1
    # the next airport payment the same day breaks the cap (1 contact per 30 days)
    second = _decide(world, "trip-2", world.offer)
    assert second["decision"] == "none"
    assert second["reason_code"] in ("contact_cap", "cooldown_product")
    # the service desk sees both decisions, with the stored reasons
    seen = httpx.get(f"{world.server.url}/v1/customers/{world.offer}/decisions", headers=DESK)
    assert seen.status_code == 200
    rows = seen.json()["decisions"]
    chosen = [r for r in rows if r["outcome"] == "selected"]
    assert len(chosen) == 1 and chosen[0]["product"] == first["product"]
    assert chosen[0]["reasons"] == first["reasons"]
    assert {r["reason"] for r in rows} >= {"selected", second["reason_code"]}
    # an event run is a run of the ledger contract: its summary names the control draw
    run_id = chosen[0]["run_id"]
    (summary,) = _sql(world, "select summary from runs where run_id = :r", r=run_id)[0]
    assert run_id.startswith("events-")
    assert json.loads(summary)["control_draw"] == CONTROL_DRAW_SCHEME


def test_objectors_and_customers_without_consent_row_are_not_profiled(world: World) -> None:
    for customer, code in (
        (world.bank.objector, "objected"),
        (world.bank.no_row, "no_consent_row"),
    ):
        answer = _decide(world, f"obj-{customer}", customer)
        assert answer["decision"] == "none" and answer["reason_code"] == code
        assert _sql(world, "select count(*) from decisions where customer_id = :c", c=customer) == [
            (0,)
        ]
        kept = _sql(
            world, "select customer_id from online_events where event_id = :e", e=f"obj-{customer}"
        )
        assert kept == [(None,)]  # not even who it was
        assert _sql(
            world, "select count(*) from online_profiles where customer_id = :c", c=customer
        ) == [(0,)]


def test_a_special_category_payment_is_neither_stored_nor_used(world: World) -> None:
    before = _profile(world, world.special)
    answer = _decide(
        world,
        "pharmacy-1",
        world.special,
        counterparty_name="Apotheek De Linde",
        mcc=5912,
        location="Utrecht",
    )
    assert answer["decision"] == "none" and answer["reason_code"] == "special_category"
    assert _profile(world, world.special) == before
    assert _sql(world, "select customer_id from online_events where event_id = 'pharmacy-1'") == [
        (None,)
    ]
    assert _sql(
        world, "select count(*) from decisions where customer_id = :c", c=world.special
    ) == [(0,)]


def test_a_debt_collection_payment_reaches_no_feature_and_triggers_nothing(world: World) -> None:
    before = _profile(world, world.special)
    answer = _decide(
        world,
        "intrum-1",
        world.special,
        counterparty_name="Intrum Nederland",
        mcc=None,
        location="Paris",
        country="FR",  # abroad, yet eligibility-only data starts nothing
    )
    assert answer["decision"] == "none" and answer["reason_code"] == "no_trigger"
    assert _profile(world, world.special) == before


def test_an_event_without_trigger_decides_nothing_but_refreshes_features(world: World) -> None:
    before = _profile(world, world.grocer)
    answer = _decide(
        world,
        "shop-1",
        world.grocer,
        counterparty_name="Albert Heijn 1234",
        mcc=5411,
        location="Utrecht",
    )
    assert answer["decision"] == "none" and answer["reason_code"] == "no_trigger"
    after = _profile(world, world.grocer)
    assert after.features["outflow_txn_count_30d"] == before.features["outflow_txn_count_30d"] + 1


@pytest.mark.parametrize(
    ("who", "code"), [("refused", "channel_refused"), ("minor", "minor"), ("capped", "contact_cap")]
)
def test_gates_stop_the_offer(world: World, who: str, code: str) -> None:
    customer = getattr(world, who)
    answer = _decide(world, f"gate-{who}", customer)
    assert answer["decision"] == "none" and answer["reason_code"] == code, answer
    reasons = _sql(
        world,
        "select distinct reason from decisions where customer_id = :c and run_id like 'events-%'",
        c=customer,
    )
    assert reasons == [(code,)]
    assert answer["channel"] is None


def test_other_triggers_decide_their_own_products(world: World) -> None:
    big = _decide(
        world,
        "inflow-1",
        world.bank.adults[6],
        amount=60_000.0,
        method="transfer",
        counterparty_name="Notaris Jansen",
        mcc=None,
        location=None,
    )
    assert big["product"] == "savings" and big["reason_code"] != "no_trigger"
    benefit = _decide(
        world,
        "benefit-1",
        world.bank.adults[7],
        amount=280.0,
        method="transfer",
        counterparty_name="SVB",
        description="Kinderbijslag 4e kwartaal",
        mcc=None,
        location=None,
    )
    assert benefit["product"] == "child_savings" and benefit["reason_code"] != "no_trigger"


@pytest.mark.parametrize(
    ("change", "field"),
    [
        ({"amount": None}, "body.amount"),
        ({"amount": 0}, "body.amount"),
        ({"method": "teleport"}, "body.method"),
        ({"booked_at": "yesterday"}, "body.booked_at"),
        ({"colour": "red"}, "body.colour"),
    ],
)
def test_malformed_events_are_refused_naming_the_field(
    world: World, change: dict, field: str
) -> None:
    body = {**event("bad-1", "secret-customer-42", world.bank.as_of), **change}
    body = {k: v for k, v in body.items() if v is not None}
    response = _post(world, body)
    assert response.status_code == 422
    assert [d["field"] for d in response.json()["detail"]] == [field]
    assert "secret-customer-42" not in response.text  # values are never echoed


def test_large_and_broken_bodies(world: World) -> None:
    huge = event("big-1", world.offer, world.bank.as_of, description="x" * 20_000)
    assert _post(world, huge).status_code == 413
    broken = httpx.post(
        f"{world.server.url}/v1/events",
        content=b'{"event_id": ',
        headers={**EVENTS, "Content-Type": "application/json"},
    )
    assert broken.status_code == 422


def test_metrics_and_logs(world: World) -> None:
    text = httpx.get(f"{world.server.url}/metrics", headers=DESK).text
    assert 'propensity_event_decisions_total{reason="selected"}' in text
    assert 'propensity_http_requests_total{method="POST",route="/v1/events",status="200"}' in text
    assert "propensity_http_request_seconds_bucket" in text
    # the decision worker's own account: events per micro-batch, queue wait, work per batch
    batches = [
        float(line.split()[-1])
        for line in text.splitlines()
        if line.startswith(
            ("propensity_decision_batch_seconds_count", "propensity_decision_queue_seconds_count")
        )
    ]
    assert len(batches) == 2 and min(batches) > 0
    log = world.server.log.read_text()
    assert "POST /v1/events 200" in log
    for customer in (
        world.offer,
        world.special,
        world.capped,
        world.bank.objector,
        "secret-customer-42",
    ):
        assert customer not in log


def test_a_consenting_customer_missing_from_the_snapshot_gets_no_profile(world: World) -> None:
    customer = world.bank.adults[10]
    engine = sa.create_engine(world.ledger)
    with engine.begin() as conn:  # as if the customer joined after the last batch run
        conn.execute(sa.text("delete from online_profiles where customer_id = :c"), {"c": customer})
    engine.dispose()
    answer = _decide(world, "new-customer-1", customer)
    assert answer["decision"] == "none" and answer["reason_code"] == "no_profile"
    assert _sql(world, "select count(*) from decisions where customer_id = :c", c=customer) == [
        (0,)
    ]
