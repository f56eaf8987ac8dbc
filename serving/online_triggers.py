"""Which configured triggers an event fires, and which campaigns they start.

The signals come from the batch's definitions (categorisation rules, `home_country`); this
module only matches them against `online.triggers`.
"""

from __future__ import annotations

import logging
from collections.abc import Collection, Sequence
from datetime import date
from functools import lru_cache

import polars as pl

from features.categories import RuleSet
from features.errors import ConfigError
from features.expressions import abroad_expr
from serving.config import Campaign
from serving.online_categorise import Categorised
from serving.online_config import Trigger
from serving.online_event import Event

log = logging.getLogger(__name__)


def check_triggers(
    triggers: Sequence[Trigger], campaigns: list[Campaign], ruleset: RuleSet
) -> None:
    """Refuse triggers naming unknown campaigns or categories, or ones that never reach a
    feature (special data and eligibility-only families never start an offer)."""
    ids = {c.id for c in campaigns}
    products = {c.product for c in campaigns}
    known = set(ruleset.categories)
    for t in triggers:
        bad = [c for c in t.campaigns if c not in ids]
        if bad:
            raise ConfigError(f"online.triggers[{t.name}]: unknown campaign(s) {bad}")
        bad = [c for c in t.categories if c not in known]
        if bad:
            raise ConfigError(f"online.triggers[{t.name}]: unknown category(ies) {bad}")
        bad = [c for c in t.categories if c in ruleset.excluded]
        if bad:
            raise ConfigError(
                f"online.triggers[{t.name}]: category(ies) {bad} never reach a feature"
            )
        if not (set(t.products) & products or t.campaigns):
            log.warning("trigger %s names no product with a campaign", t.name)


def is_abroad(event: Event, home_country: str) -> bool:
    """`features.expressions.abroad_expr` (the batch's definition) on the event's country."""
    return _abroad(event.country, home_country)


@lru_cache(maxsize=1024)
def _abroad(country: str | None, home_country: str) -> bool:
    """Once per distinct country (a polars call costs more than the rest of a trigger)."""
    frame = pl.DataFrame({"country": [country]}, schema={"country": pl.String})
    return bool(frame.select(abroad_expr(home_country)).item())


def fired(
    triggers: Sequence[Trigger], event: Event, cat: Categorised, large: bool, abroad: bool
) -> list[Trigger]:
    """The triggers whose direction and method fit and whose category or a signal is hit."""
    signals = {"airport": cat.airport, "abroad": abroad, "large_inflow": large}
    direction = "in" if event.amount > 0 else "out"
    hits = []
    for t in triggers:
        if t.direction not in ("any", direction):
            continue
        if t.methods and event.method not in t.methods:
            continue
        if cat.category in t.categories or any(signals[s] for s in t.signals):
            hits.append(t)
    return hits


def started_campaigns(
    triggers: list[Trigger], campaigns: list[Campaign], loaded: Collection[str], day: date
) -> list[Campaign]:
    """The active campaigns the triggers name (by id or product) whose model is served."""
    ids = {c for t in triggers for c in t.campaigns}
    products = {p for t in triggers for p in t.products}
    return [
        c
        for c in campaigns
        if (c.id in ids or c.product in products) and c.active_on(day) and c.product in loaded
    ]
