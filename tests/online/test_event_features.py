"""Features at event time (pure): what an event refreshes, and what it never counts twice."""

from __future__ import annotations

from datetime import date

from features.categories import load_ruleset
from features.config import FeatureConfig
from serving.online_features import EventFacts, large_inflows, refresh, update_life_events

CONFIG = FeatureConfig()
RULES = load_ruleset(CONFIG)
SNAPSHOT = date(2026, 11, 2)  # the batch's features are as of this day
BIRTH = date(1980, 11, 3)


def _features() -> dict[str, float | None]:
    f: dict[str, float | None] = {
        "age_years": 45,
        "tenure_days": 1000,
        "days_since_last_txn": 1,
        "days_since_last_airport": None,
        "days_since_first_airport": None,
        "days_since_last_salary": 20,
        "days_held_savings": None,
        "first_airport_30d": 0.0,
        "first_abroad_30d": 0.0,
        "days_since_first_abroad": 400,
        "large_inflow_amount_max_30d": None,
        "large_inflow_30d": 0.0,
        "days_since_last_large_inflow": None,
        "income_monthly_amount": 3000.0,
        "balance_last": 500.0,
    }
    for w in CONFIG.windows:
        for name in (
            "outflow_txn_count",
            "outflow_amount_sum",
            "inflow_txn_count",
            "inflow_amount_sum",
            "net_flow_amount_sum",
            "airport_txn_count",
            "airport_amount_sum",
            "dining_txn_count",
            "dining_amount_sum",
        ):
            f[f"{name}_{w}d"] = 2.0
        f[f"inflow_amount_max_{w}d"] = 100.0
    return f


def _airport(day: date) -> EventFacts:
    return EventFacts(day, -20.0, "dining", airport=True, abroad=False, balance_after=480.0)


def test_an_airport_payment_counts_at_once_and_moves_the_dates_forward() -> None:
    f, as_of = refresh(
        _features(), SNAPSHOT, BIRTH, _airport(date(2026, 11, 4)), False, RULES, CONFIG
    )
    assert as_of == date(2026, 11, 5)  # the day after the event, as a batch run would see it
    for w in CONFIG.windows:
        assert f[f"airport_txn_count_{w}d"] == 3 and f[f"airport_amount_sum_{w}d"] == -18.0
        assert f[f"outflow_txn_count_{w}d"] == 3 and f[f"outflow_amount_sum_{w}d"] == 22.0
        assert f[f"net_flow_amount_sum_{w}d"] == -18.0 and f[f"dining_txn_count_{w}d"] == 3
        assert f[f"inflow_txn_count_{w}d"] == 2  # a debit is no inflow
    assert f["days_since_last_airport"] == 1 and f["days_since_first_airport"] == 1
    assert f["days_since_last_salary"] == 23 and f["tenure_days"] == 1003  # three days later
    assert f["days_since_last_txn"] == 1 and f["balance_last"] == 480.0
    assert f["age_years"] == 46  # the birthday fell between snapshot and event
    assert f["days_held_savings"] is None
    update_life_events([f], RULES, CONFIG)
    assert f["first_airport_30d"] == 1.0 and f["first_abroad_30d"] == 0.0


def test_an_event_already_in_the_snapshot_changes_nothing() -> None:
    before = _features()
    f, as_of = refresh(before, SNAPSHOT, BIRTH, _airport(date(2026, 11, 1)), False, RULES, CONFIG)
    assert f == before and as_of == SNAPSHOT


def test_large_inflows_follow_the_batch_rule() -> None:
    day = date(2026, 11, 4)

    def credit(amount: float, category: str = "transfers") -> EventFacts:
        return EventFacts(day, amount, category, airport=False, abroad=False, balance_after=None)

    facts = [credit(60_000), credit(9_500), credit(9_500), credit(900), credit(60_000, "salary")]
    incomes = [None, 3_000.0, 2_000.0, 100.0, 3_000.0]
    # 60,000: the absolute rule; 9,500: at least 3 months of income and over the 2,500 floor;
    # 900 is 9 months of a tiny income but under the floor; salary is never a large inflow
    assert large_inflows(facts, incomes, CONFIG) == [True, True, True, False, False]
    f, _ = refresh(_features(), SNAPSHOT, BIRTH, facts[0], True, RULES, CONFIG)
    update_life_events([f], RULES, CONFIG)
    assert f["large_inflow_amount_max_30d"] == 60_000 and f["large_inflow_30d"] == 1.0
    assert f["inflow_amount_max_30d"] == 60_000 and f["days_since_last_large_inflow"] == 1
