"""The optional global control group: a share of eligible customers held out of every campaign
for a period, the same customers in every run of that period, redrawn in the next."""

from __future__ import annotations

import sqlite3
from datetime import date
from pathlib import Path

import polars as pl
from serving_world import AS_OF, adult, build_world, select

from serving.arbitration import global_control
from serving.config import Campaign, ServingConfig

CAMPAIGNS = [
    Campaign(id=f"c-{p}", product=p, channels=("email",), start=date(2026, 1, 1),
             end=date(2026, 12, 31), capacity={"email": 10_000}, control_share=0.0)
    for p in ("savings", "insurance")
]  # fmt: skip


def _world(share: float):
    specs = [adult() for _ in range(400)]
    return build_world(specs, CAMPAIGNS, ServingConfig(global_control_share=share))


def test_held_out_customers_get_no_offer_and_the_share_is_kept(tmp_path: Path) -> None:
    world = _world(0.25)
    summary = select(world, f"sqlite:///{tmp_path / 'l.sqlite'}", "r1", tmp_path / "out")
    counts = dict(summary.counts.group_by("reason").agg(pl.col("n").sum()).iter_rows())
    held = counts.get("global_control", 0)
    # 400 eligible customers x 2 campaigns: about a quarter of the customers held out (both of
    # their pairs); everyone else gets one offer and loses the other to arbitration
    assert 0.15 * 400 < held / 2 < 0.35 * 400
    assert held + counts["selected"] + counts["lost_arbitration"] == 800
    with sqlite3.connect(tmp_path / "l.sqlite") as con:
        rows = con.execute("select customer_id, reason from decisions").fetchall()
    by_customer: dict[str, set[str]] = {}
    for cid, reason in rows:
        by_customer.setdefault(cid, set()).add(reason)
    # held out of EVERY campaign: never selected in one and held out in another
    kinds = {frozenset(r) for r in by_customer.values()}
    assert kinds == {frozenset({"global_control"}), frozenset({"selected", "lost_arbitration"})}


def test_membership_persists_within_a_period_and_is_redrawn_after() -> None:
    ids = pl.Series("customer_id", [f"C{i:05d}" for i in range(5000)])
    start = date(2026, 1, 1)

    def members(day: date) -> set[str]:
        frame = global_control(ids, day, 0.1, 90, start)
        return set(frame.filter(pl.col("in_global_control"))["customer_id"])

    first = members(date(2026, 1, 5))
    assert 400 < len(first) < 600
    assert members(date(2026, 3, 31)) == first  # same 90-day period
    later = members(date(2026, 4, 1))  # the next period
    assert later != first and 400 < len(later) < 600
    assert not members(AS_OF) - set(ids)


def test_no_global_control_by_default(tmp_path: Path) -> None:
    summary = select(_world(0.0), f"sqlite:///{tmp_path / 'l.sqlite'}", "r1", tmp_path / "out")
    assert summary.n("global_control") == 0 and summary.n("selected") == 400


def test_programme_uplift_is_measured_against_the_global_control_group(tmp_path: Path) -> None:
    """`propensity uplift`'s programme row: every customer who reached the draw counts once per
    run, held-out customers in the control arm, conversions from the products table."""
    from datetime import timedelta

    from monitoring.config import MonitoringConfig
    from monitoring.uplift import measure
    from serving.ledger import make_engine

    url = f"sqlite:///{tmp_path / 'l.sqlite'}"
    select(_world(0.25), url, "r1", tmp_path / "out")
    with sqlite3.connect(tmp_path / "l.sqlite") as con:
        rows = con.execute("select customer_id, product, reason from decisions").fetchall()
    held = sorted({c for c, _, r in rows if r == "global_control"})
    reached = sorted({c for c, _, _ in rows})
    others = [c for c in reached if c not in held]
    # every 4th held-out and every 2nd other customer opens savings within the window;
    # one more opens it only after the window (never counted)
    opened = held[::4] + others[::2]
    late = [c for c in others[1::2]][:5]
    day = AS_OF + timedelta(days=10)
    products = pl.DataFrame(
        {
            "customer_id": opened + late,
            "product": ["savings"] * (len(opened) + len(late)),
            "opened_at": [day] * len(opened) + [AS_OF + timedelta(days=400)] * len(late),
        }
    ).lazy()
    engine = make_engine(url)
    try:
        report, _ = measure(engine, products, MonitoringConfig(), AS_OF + timedelta(days=200), {})
    finally:
        engine.dispose()
    p = report.programme
    assert p is not None and p.final  # the attribution window closed before day 200
    assert (p.control_n, p.treated_n) == (len(held), len(others))
    assert (p.control_conversions, p.treated_conversions) == (len(held[::4]), len(others[::2]))
    assert p.uplift_rel is not None and p.uplift_rel > 0


def test_no_programme_uplift_without_a_global_control_group(tmp_path: Path) -> None:
    from monitoring.config import MonitoringConfig
    from monitoring.uplift import measure
    from serving.ledger import make_engine

    url = f"sqlite:///{tmp_path / 'l.sqlite'}"
    select(_world(0.0), url, "r1", tmp_path / "out")
    engine = make_engine(url)
    try:
        empty = pl.DataFrame(schema={"customer_id": pl.String(), "product": pl.String(),
                                     "opened_at": pl.Date()}).lazy()  # fmt: skip
        report, _ = measure(engine, empty, MonitoringConfig(), AS_OF, {})
    finally:
        engine.dispose()
    assert report.programme is None
