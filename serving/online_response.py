"""The answer an event gets: one row of the decisions, or a gate's reason code alone."""

from __future__ import annotations

from datetime import datetime
from typing import Any

import polars as pl

from serving.online_event import Event
from serving.reasons import Reason


def best_rows(decisions: pl.DataFrame) -> dict[str, dict[str, Any]]:
    """Each customer's row to answer with: the selected offer, else control (won a slot but
    held out to measure uplift: not contacted), else the best-scored candidate's reason."""
    rank = (
        pl.when(pl.col("outcome") == Reason.SELECTED.value)
        .then(0)
        .when(pl.col("outcome") == Reason.CONTROL.value)
        .then(1)
        .otherwise(2)
    )
    best = (
        decisions.with_columns(_rank=rank)
        .sort("customer_id", "_rank", "propensity", descending=[False, False, True])
        .unique("customer_id", keep="first", maintain_order=True)
    )
    return {r["customer_id"]: r for r in best.iter_rows(named=True)}


def answer(event: Event, row: dict[str, Any] | None) -> dict[str, Any]:
    """The response from the customer's best decision row (none: every score too low)."""
    if row is None:  # every score was under the campaigns' minimum
        return response(event, None, Reason.BELOW_THRESHOLD, [])
    code = Reason(row["reason"])
    return response(event, row, code, list(row["reasons"]) if code is Reason.SELECTED else [])


def response(
    event: Event, row: dict[str, Any] | None, code: Reason, reasons: list[str]
) -> dict[str, Any]:
    """The JSON body of an answer (the API's and the stored replay's)."""
    offer = code is Reason.SELECTED
    return {
        "event_id": event.event_id,
        "decision": "offer" if offer else "none",
        "campaign_id": row["campaign_id"] if row else None,
        "product": row["product"] if row else None,
        "channel": row["channel"] if offer and row else None,
        "propensity": round(float(row["propensity"]), 6) if row else None,
        "reason_code": code.value,
        "reasons": reasons,
        "decided_at": datetime.now().isoformat(timespec="milliseconds"),
    }
