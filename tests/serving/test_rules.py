"""Each serving rule on a hand-made customer: the expected reason code, through the real run."""

from __future__ import annotations

from datetime import date, datetime
from pathlib import Path

import polars as pl
import pytest
from serving_world import AS_OF, adult, build_world, select

from features.errors import ConfigError
from features.schemas import Tables
from serving.batch import run_selection
from serving.config import Campaign, ServingConfig, load_campaigns
from serving.ledger import RunExistsError


def campaign(**kw: object) -> Campaign:
    base: dict = {
        "id": "sav",
        "product": "savings",
        "channels": ("email", "phone"),
        "start": date(2026, 1, 1),
        "end": date(2026, 12, 31),
        "capacity": {"email": 10, "phone": 10},
        "min_propensity": 0.1,
        "control_share": 0.0,
    }
    base.update(kw)
    return Campaign(**base)


def decide_one(spec: dict, camp: Campaign | None = None, tmp: Path = Path("/nonexistent")) -> dict:
    world = build_world([spec], [camp or campaign()], ServingConfig())
    summary = select(world, f"sqlite:///{tmp}/none.sqlite", "t", tmp, dry_run=True)
    rows = summary.counts.to_dicts()
    return rows[0] if rows else {"reason": None, "gates": summary.gates}


@pytest.mark.parametrize(
    ("spec", "reason", "channel"),
    [
        (adult(), "selected", "phone"),
        (adult(age=17), "minor", None),
        (adult(holds={"savings"}), "holds_product", None),
        (adult(perms=(False, True, True, False)), "channel_refused", None),
        (
            adult(history=[("insurance", "email", 5, None), ("insurance", "sms", 20, None)]),
            "contact_cap",
            None,
        ),
        (adult(history=[("savings", "post", 80, None)]), "cooldown_product", None),
        (adult(history=[("savings", "post", 170, "declined")]), "cooldown_decline", None),
        (adult(history=[("savings", "post", 95, None)]), "selected", "phone"),
        (adult(history=[("insurance", "phone", 60, None)]), "selected", "email"),
        (
            adult(perms=(False, False, False, True), history=[("insurance", "phone", 60, None)]),
            "phone_cap",
            None,
        ),
        (adult(recent_txn=False), "selected", "email"),
        (adult(perms=(False, False, False, True), recent_txn=False), "channel_refused", None),
    ],
)
def test_rule(spec: dict, reason: str, channel: str | None, tmp_path: Path) -> None:
    row = decide_one(spec, tmp=tmp_path)
    assert (row["reason"], row.get("channel")) == (reason, channel)


def test_distress_blocks_credit_only(tmp_path: Path) -> None:
    card = campaign(id="cc", product="credit_card")
    assert decide_one(adult(distress=True), card, tmp_path)["reason"] == "distress"
    assert decide_one(adult(distress=True), tmp=tmp_path)["reason"] == "selected"


def test_child_savings_goes_to_adult_receiving_child_benefit(tmp_path: Path) -> None:
    child = campaign(id="kid", product="child_savings")
    assert decide_one(adult(child_benefit=True), child, tmp_path)["reason"] == "selected"
    assert decide_one(adult(), child, tmp_path)["reason"] == "no_child_benefit"


def test_objector_and_missing_consent_row_are_counted_not_decided(tmp_path: Path) -> None:
    for spec, gate in (
        (adult(consent="objected"), "objected"),
        (adult(consent="none"), "no_consent_row"),
    ):
        row = decide_one(spec, tmp=tmp_path)
        assert row["reason"] is None and row["gates"][gate] == 1


def test_capacity_goes_to_highest_expected_value_and_control_is_kept_aside(tmp_path: Path) -> None:
    specs = [adult(scores=(0.2 + i / 100, 0.5, 0.5, 0.5)) for i in range(20)]
    camp = campaign(channels=("email",), capacity={"email": 5}, control_share=0.4)
    world = build_world(specs, [camp], ServingConfig())
    url = f"sqlite:///{tmp_path}/l.sqlite"
    summary = select(world, url, "r1", tmp_path)
    assert summary.n("selected") + summary.n("control") == 5
    assert summary.n("control") >= 1 and summary.n("capacity") == 15
    sent = pl.read_csv(tmp_path / "r1" / "email.csv")
    assert sent.height == summary.n("selected") and sent["customer_id"].min() >= "c015"
    with pytest.raises(RunExistsError):
        select(world, url, "r1", tmp_path)


def test_bad_campaign_file_names_the_key(tmp_path: Path) -> None:
    bad = tmp_path / "c.toml"
    bad.write_text(
        '[[campaigns]]\nid = "x"\nproduct = "savings"\nchannels = ["email"]\n'
        "start = 2026-01-01\nend = 2026-02-01\ncapacity = {email = 1}\nvalu = 3\n"
    )
    with pytest.raises(ConfigError, match=r"campaigns\[x\]\.valu"):
        load_campaigns(bad)


def test_default_campaign_file_loads() -> None:
    assert {
        c.product for c in load_campaigns(Path(__file__).parents[2] / "serving" / "campaigns.toml")
    } == {"savings", "insurance", "credit_card", "child_savings"}


def test_real_distress_flags_block_a_credit_offer(tmp_path: Path) -> None:
    """No explicit distress frame: `features.distress` sees a payment to a debt collector."""
    camp = campaign(id="cc", product="credit_card", channels=("email",), capacity={"email": 5})
    world = build_world([adult(), adult()], [camp], ServingConfig())
    debt = pl.DataFrame(
        {
            "transaction_id": ["d1"],
            "customer_id": ["c001"],
            "booked_at": [datetime(2026, 10, 15, 10)],
            "amount": [-150.0],
            "method": ["transfer"],
            "counterparty_name": ["Intrum Nederland"],
        }
    )
    tables = world.tables.with_(
        transactions=pl.concat(
            [world.tables.transactions, Tables.from_frames(transactions=debt).transactions]
        )
    )
    summary = run_selection(
        tables,
        world.scores,
        world.campaigns,
        world.config,
        as_of=AS_OF,
        run_id="d",
        out_dir=tmp_path,
        ledger_url=f"sqlite:///{tmp_path}/x.sqlite",
        dry_run=True,
    )
    reasons = dict(summary.counts.select("reason", "n").iter_rows())
    assert reasons == {"distress": 1, "selected": 1}
