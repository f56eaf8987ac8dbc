"""The same `serving.decide.Inputs` a batch run builds, from online profiles."""

from __future__ import annotations

from datetime import date
from typing import Any

import polars as pl

from features.expressions import full_years
from features.schemas import CHANNELS
from serving import online_store as store
from serving.contact_policy import HISTORY_SCHEMA
from serving.decide import Inputs
from serving.online_worker import Pending


def event_inputs(
    members: list[Pending], consents: dict[str, dict[str, Any]], scores: pl.DataFrame
) -> Inputs:
    """These events' customers as `decide` reads them (history is set by the caller)."""
    ids = [p.event.customer_id for p in members]
    profiles: list[store.Profile] = [p.profile for p in members]  # type: ignore[misc]
    day = members[0].event.booked_at.date()
    held = [(cid, prod) for cid, q in zip(ids, profiles, strict=True) for prod in q.held]
    return Inputs(
        scores=scores.lazy(),
        facts=_facts(ids, profiles, day).lazy(),
        held=pl.DataFrame(
            held, schema={"customer_id": pl.String, "product": pl.String}, orient="row"
        )
        .with_columns(holds=pl.lit(True))
        .lazy(),
        distress=pl.LazyFrame(
            {"customer_id": ids, "in_distress": [q.in_distress for q in profiles]},
            schema={"customer_id": pl.String, "in_distress": pl.Boolean},
        ),
        consents=pl.LazyFrame(
            {"customer_id": ids, **{c: [bool(consents[i][c]) for i in ids] for c in CHANNELS}},
            schema={"customer_id": pl.String, **{c: pl.Boolean for c in CHANNELS}},
        ),
        history=pl.LazyFrame(schema=HISTORY_SCHEMA),
    )


def _facts(ids: list[str], profiles: list[store.Profile], day: date) -> pl.DataFrame:
    """Age on the event's day, current customer and child benefit, as the gates read them."""
    return pl.DataFrame(
        {
            "customer_id": ids,
            "birth_date": [q.birth_date for q in profiles],
            "is_current": [q.is_current for q in profiles],
            "child_benefit": [q.child_benefit for q in profiles],
        },
        schema={
            "customer_id": pl.String,
            "birth_date": pl.Date,
            "is_current": pl.Boolean,
            "child_benefit": pl.Boolean,
        },
    ).select(
        "customer_id",
        age=full_years(pl.col("birth_date"), day),
        is_current=pl.col("is_current"),
        child_benefit=pl.col("child_benefit"),
    )
