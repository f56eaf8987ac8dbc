"""`serving.eligibility.per_customer`: features, distress flags and eligibility facts from one
scan of the transactions equal what the three stand-alone functions compute."""

from __future__ import annotations

from datetime import date
from pathlib import Path

import pytest

from features.config import DistressConfig, FeatureConfig
from features.io import load_tables
from features.pipeline import build_features
from features.timetravel import as_known_at
from serving.config import ServingConfig
from serving.consent import consent_gate
from serving.eligibility import customer_facts, distress_frame, per_customer
from synthbank import generate


@pytest.mark.parametrize("days", [45, 200])
def test_one_scan_gives_the_stand_alone_answers(tmp_path: Path, days: int) -> None:
    generate(customers=500, months=14, seed=5, out=tmp_path)
    as_of = date(2026, 9, 15)
    gated = consent_gate(as_known_at(load_tables(tmp_path).tables, as_of)).tables
    serving = ServingConfig(
        distress=DistressConfig(window_days=days, days_below_zero=2),
        current_customer_days=days,
        child_benefit_days=days,
    )
    features = FeatureConfig()
    found = per_customer(gated, as_of, serving, features)
    assert found.features.equals(build_features(gated, as_of, features).collect())
    distress = distress_frame(gated, as_of, serving, features).collect()
    assert found.distress.equals(distress)
    facts = customer_facts(gated, as_of, serving, features).collect().sort("customer_id")
    assert found.facts.sort("customer_id").equals(facts)
    assert facts["child_benefit"].any() == (days > 100)
    assert distress["in_distress"].any()
