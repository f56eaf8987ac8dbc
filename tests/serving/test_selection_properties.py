"""Property tests: over random consents, histories, scores and campaigns, two runs on the same
day against a real ledger (SQLite and PostgreSQL) never break a serving rule."""

from __future__ import annotations

from collections.abc import Callable
from datetime import date
from pathlib import Path

import polars as pl
import sqlalchemy as sa
from hypothesis import HealthCheck, given, settings
from serving_world import AS_OF, World, select, worlds

SETTINGS = settings(
    max_examples=12, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)


def _read(url: str, table: str) -> pl.DataFrame:
    engine = sa.create_engine(url)
    try:
        with engine.connect() as conn:
            rows = conn.execute(sa.text(f"select * from {table}"))
            return pl.DataFrame([tuple(r) for r in rows], schema=list(rows.keys()), orient="row")
    finally:
        engine.dispose()


def _days(frame: pl.DataFrame) -> pl.Series:
    at = frame["contacted_at"].cast(pl.String).str.slice(0, 10).str.to_date()
    return (at - AS_OF).dt.total_days().abs()


def _check_caps(world: World, contacts: pl.DataFrame) -> None:
    """Every contact written by a run respects every cap, counting all other contacts."""
    policy = world.config.policy
    others = contacts.with_columns(gap=_days(contacts)).with_row_index("row")
    for item in others.filter(pl.col("source") == "run").iter_rows(named=True):
        mine = others.filter(
            pl.col("customer_id") == item["customer_id"], pl.col("row") != item["row"]
        )
        assert (
            mine.filter(pl.col("gap") < policy.contacts_window_days).height + 1
            <= policy.max_contacts
        )
        same = mine.filter(pl.col("product") == item["product"])
        assert same.filter(pl.col("gap") < policy.product_cooldown_days).is_empty()
        declined = same.filter(
            pl.col("outcome") == "declined", pl.col("gap") < policy.decline_cooldown_days
        )
        assert declined.is_empty()
        if item["channel"] == "phone":
            phone = mine.filter(
                pl.col("channel") == "phone", pl.col("gap") < policy.phone_window_days
            )
            assert phone.height + 1 <= policy.max_phone


def _check_run(world: World, decisions: pl.DataFrame) -> None:
    """Consent, channel, age, eligibility, capacity and one-offer rules of one run."""
    consents = world.tables.consents.collect()
    ok = set(consents.filter(pl.col("payment_data_marketing"))["customer_id"])
    perms = {r["customer_id"]: r for r in consents.iter_rows(named=True)}
    held = set(world.tables.products.collect().select("customer_id", "product").iter_rows())
    distressed = set(world.distress.filter(pl.col("in_distress"))["customer_id"])
    current = set(world.tables.transactions.collect()["customer_id"]) | {c for c, _ in held}
    chosen = decisions.filter(pl.col("outcome").is_in(["selected", "control"]))
    assert set(decisions["customer_id"]) <= ok, "an objector or a customer without consent row"
    assert chosen["customer_id"].is_unique().all(), "more than one offer for a customer"
    for row in chosen.iter_rows(named=True):
        cid = row["customer_id"]
        assert perms[cid][row["channel"]], "a refused channel"
        assert world.ages[cid] >= 18, "a minor"
        assert (cid, row["product"]) not in held
        assert not (row["product"] == "credit_card" and cid in distressed)
        assert row["channel"] != "phone" or cid in current
    caps = {(c.id, ch): n for c in world.campaigns for ch, n in c.capacity.items()}
    for camp, ch, n in chosen.group_by("campaign_id", "channel").len().iter_rows():
        assert n <= caps[(camp, ch)], "capacity exceeded"


@SETTINGS
@given(world=worlds())
def test_two_runs_never_break_a_rule(
    world: World, new_ledger: Callable[[], str], tmp_path: Path
) -> None:
    url = new_ledger()
    select(world, url, "morning", tmp_path)
    select(world, url, "afternoon", tmp_path)
    decisions = _read(url, "decisions")
    for run_id in ("morning", "afternoon"):
        _check_run(world, decisions.filter(pl.col("run_id") == run_id))
    _check_caps(world, _read(url, "contacts"))


@SETTINGS
@given(world=worlds())
def test_same_inputs_same_decisions(
    world: World, new_ledger: Callable[[], str], tmp_path: Path
) -> None:
    first, second = new_ledger(), new_ledger()
    select(world, first, "r", tmp_path / "a")
    select(world, second, "r", tmp_path / "b")
    cols = ["customer_id", "campaign_id", "channel", "outcome", "reason"]
    a = _read(first, "decisions").select(cols).sort(cols)
    b = _read(second, "decisions").select(cols).sort(cols)
    assert a.equals(b)
    assert date.fromisoformat(str(_read(first, "runs")["as_of"][0])[:10]) == AS_OF
