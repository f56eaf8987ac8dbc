"""The steps before a decision: the gates an event passes and its customer's fresh features.

The rules are not here: consent is the snapshot's `may_profile` (each batch run writes it by
`features.consent`) with the objection register laid over it per micro-batch
(`serving.online_store.read_consents`, `features.consent.with_objections`), categories come
from `features.categories`, features from `serving.online_features`.
"""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from features.categories import CHILD_BENEFIT, RuleSet
from features.config import FeatureConfig
from serving import online_store as store
from serving.online_features import (
    EventFacts,
    ages,
    large_inflows,
    refresh,
    update_life_events,
)
from serving.online_response import response
from serving.online_triggers import is_abroad
from serving.online_worker import Pending
from serving.reasons import Reason


def gates(
    fresh: list[Pending],
    consents: dict[str, dict[str, Any]],
    profiles: dict[str, store.Profile],
    ruleset: RuleSet,
) -> list[Pending]:
    """Objection, special category and profile: the events that go on to triggers (the
    others get their answer here)."""
    deciding = []
    for p in fresh:
        consent = consents.get(p.event.customer_id)
        if consent is None or not consent["may_profile"]:
            code = Reason.NO_CONSENT_ROW if consent is None else Reason.OBJECTED
            p.response, p.keep_customer = response(p.event, None, code, []), False
        elif p.cat is None or p.cat.special:  # never stored, never used: id and code only
            p.response = response(p.event, None, Reason.SPECIAL_CATEGORY, [])
            p.keep_customer = False
        elif p.cat.category in ruleset.eligibility_only:
            # e.g. debt collection: read by the responsible-lending check alone (at the
            # next batch run), never a feature and never a trigger
            p.response = response(p.event, None, Reason.NO_TRIGGER, [])
        elif p.event.customer_id not in profiles:
            p.response = response(p.event, None, Reason.NO_PROFILE, [])
        else:
            p.profile = profiles[p.event.customer_id]
            p.consent = consent
            deciding.append(p)
    return deciding


def refresh_profiles(
    deciding: list[Pending], ruleset: RuleSet, features: FeatureConfig
) -> list[bool]:
    """Features at event time (see `serving.online_features`); whether each event is a
    large inflow (a trigger signal)."""
    facts = [_facts(p, features) for p in deciding]
    incomes = [p.profile.features.get("income_monthly_amount") for p in deciding]  # type: ignore[union-attr]
    large = large_inflows(facts, incomes, features)
    age = _ages(deciding, facts)
    for p, f, big, years in zip(deciding, facts, large, age, strict=True):
        prof = p.profile
        assert prof is not None
        prof.features, prof.features_as_of = refresh(
            prof.features, prof.features_as_of, prof.birth_date, f, big, ruleset, features, years
        )
        prof.is_current = True  # the event is a payment on the account
        if f.category == CHILD_BENEFIT:  # the categorisation rule is the one definition
            prof.child_benefit = True
    update_life_events([p.profile.features for p in deciding], ruleset, features)  # type: ignore[union-attr]
    return large


def _ages(deciding: list[Pending], facts: list[EventFacts]) -> list[int]:
    """Each customer's age on the day after its event (one polars call per distinct day)."""
    out = [0] * len(deciding)
    for day in {f.day for f in facts}:
        at = [i for i, f in enumerate(facts) if f.day == day]
        births = [deciding[i].profile.birth_date for i in at]  # type: ignore[union-attr]
        for i, years in zip(at, ages(births, day + timedelta(days=1)), strict=True):
            out[i] = years
    return out


def _facts(p: Pending, features: FeatureConfig) -> EventFacts:
    assert p.cat is not None
    return EventFacts(
        p.event.booked_at.date(),
        p.event.amount,
        p.cat.category,
        p.cat.airport,
        is_abroad(p.event, features.home_country),
        p.event.balance_after,
    )
