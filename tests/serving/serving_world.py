"""Small generated banks for the serving tests (hypothesis strategies and plain builders)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime, timedelta
from pathlib import Path

import polars as pl
from hypothesis import strategies as st

from features.schemas import CHANNELS, Tables
from serving.batch import run_selection
from serving.config import Campaign, ContactPolicy, ServingConfig
from serving.outputs import RunSummary

AS_OF = date(2026, 11, 2)
PRODUCTS = ("savings", "insurance", "credit_card", "child_savings")


@dataclass(frozen=True)
class World:
    tables: Tables
    scores: pl.DataFrame
    campaigns: list[Campaign]
    config: ServingConfig
    distress: pl.DataFrame
    ages: dict[str, int]


def _customer(cid: str, spec: dict) -> dict[str, list]:
    """Rows of every table for one customer described by a drawn `spec`."""
    birth = date(AS_OF.year - spec["age"], 1, 1)
    out: dict[str, list] = {
        k: [] for k in ("customers", "consents", "products", "transactions", "contacts")
    }
    out["customers"].append(
        {"customer_id": cid, "birth_date": birth, "customer_since": date(2015, 1, 1)}
    )
    if spec["consent"] != "none":
        perms = dict(zip(CHANNELS, spec["perms"], strict=True))
        out["consents"].append(
            {"customer_id": cid, "payment_data_marketing": spec["consent"] == "ok", **perms}
        )
    for product in spec["holds"]:
        out["products"].append(
            {"customer_id": cid, "product": product, "opened_at": date(2020, 1, 1)}
        )
    if spec["recent_txn"]:
        out["transactions"].append(_txn(f"{cid}-t", cid, -25.0, "Albert Heijn"))
    if spec["child_benefit"]:
        out["transactions"].append(_txn(f"{cid}-cb", cid, 280.0, "SVB Kinderbijslag"))
    for i, (product, channel, days, outcome) in enumerate(spec["history"]):
        at = datetime.combine(AS_OF - timedelta(days=days), datetime.min.time()) + timedelta(
            hours=9
        )
        out["contacts"].append(
            {
                "customer_id": cid,
                "product": product,
                "channel": channel,
                "contacted_at": at,
                "campaign_id": f"old{i}",
                "outcome": outcome,
            }
        )
    return out


def _txn(tid: str, cid: str, amount: float, name: str) -> dict:
    return {
        "transaction_id": tid,
        "customer_id": cid,
        "booked_at": datetime(2026, 10, 20, 12),
        "amount": amount,
        "method": "transfer",
        "counterparty_name": name,
    }


customer_specs = st.fixed_dictionaries(
    {
        "age": st.sampled_from([12, 17, 18, 45, 45, 45]),
        "consent": st.sampled_from(["ok", "ok", "ok", "objected", "none"]),
        "perms": st.tuples(*[st.sampled_from([True, True, False])] * 4),
        "holds": st.sets(st.sampled_from(PRODUCTS), max_size=2),
        "recent_txn": st.booleans(),
        "child_benefit": st.booleans(),
        "distress": st.booleans(),
        "history": st.lists(
            st.tuples(
                st.sampled_from(PRODUCTS),
                st.sampled_from(CHANNELS),
                st.integers(-5, 200),
                st.sampled_from([None, "declined", "accepted"]),
            ),
            max_size=4,
        ),
        "scores": st.tuples(*[st.floats(0.0, 1.0)] * 4),
    }
)


@st.composite
def campaign_lists(draw: st.DrawFn) -> list[Campaign]:
    n = draw(st.integers(1, 3))
    out = []
    for i in range(n):
        channels = draw(st.lists(st.sampled_from(CHANNELS), min_size=1, max_size=4, unique=True))
        out.append(
            Campaign(
                id=f"camp{i}",
                product=draw(st.sampled_from(PRODUCTS)),
                channels=tuple(channels),
                start=date(2026, 1, 1),
                end=date(2026, 12, 31),
                capacity={c: draw(st.sampled_from([0, 1, 3, 10])) for c in channels},
                min_propensity=draw(st.sampled_from([0.0, 0.3, 0.6])),
                value=draw(st.sampled_from([50.0, 100.0, 200.0])),
                control_share=draw(st.sampled_from([0.0, 0.3])),
            )
        )
    return out


@st.composite
def worlds(draw: st.DrawFn, max_customers: int = 12) -> World:
    specs = draw(st.lists(customer_specs, min_size=1, max_size=max_customers))
    policy = ContactPolicy(max_contacts=draw(st.integers(1, 3)), max_phone=draw(st.integers(0, 2)))
    return build_world(specs, draw(campaign_lists()), ServingConfig(policy=policy))


def build_world(specs: list[dict], campaigns: list[Campaign], config: ServingConfig) -> World:
    rows: dict[str, list] = {
        k: [] for k in ("customers", "consents", "products", "transactions", "contacts")
    }
    for i, spec in enumerate(specs):
        for k, v in _customer(f"c{i:03d}", spec).items():
            rows[k].extend(v)
    frames = {k: pl.DataFrame(v) for k, v in rows.items() if v}
    ids = [f"c{i:03d}" for i in range(len(specs))]
    scores = pl.DataFrame(
        {
            "customer_id": [c for c in ids for _ in PRODUCTS],
            "product": list(PRODUCTS) * len(ids),
            "propensity": [p for s in specs for p in s["scores"]],
            "model_version": "1",
        }
    )
    distress = pl.DataFrame({"customer_id": ids, "in_distress": [s["distress"] for s in specs]})
    ages = {c: s["age"] for c, s in zip(ids, specs, strict=True)}
    consents = frames.get(
        "consents",
        pl.DataFrame(schema={"customer_id": pl.String(), "payment_data_marketing": pl.Boolean()}),
    )
    frames["consents"] = consents
    return World(Tables.from_frames(**frames), scores, campaigns, config, distress, ages)


def adult(**overrides: object) -> dict:
    """A consenting adult current customer with every channel permitted (for example tests)."""
    spec = {
        "age": 45,
        "consent": "ok",
        "perms": (True, True, True, True),
        "holds": set(),
        "recent_txn": True,
        "child_benefit": False,
        "distress": False,
        "history": [],
        "scores": (0.5, 0.5, 0.5, 0.5),
    }
    spec.update(overrides)
    return spec


def select(world: World, url: str, run_id: str, out: Path, **options: object) -> RunSummary:
    """One real selection run over a world, on the ledger at `url`."""
    return run_selection(
        world.tables,
        world.scores,
        world.campaigns,
        world.config,
        as_of=AS_OF,
        run_id=run_id,
        out_dir=out,
        ledger_url=url,
        distress=world.distress.lazy(),
        **options,  # type: ignore[arg-type]
    )
