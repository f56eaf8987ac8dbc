"""Scores, the one decision engine (`serving.decide.decide`) and reasons for event batches."""

from __future__ import annotations

from dataclasses import replace
from datetime import date
from typing import Any

import polars as pl
from sqlalchemy.engine import Connection

from models.bundle import ModelBundle
from serving.config import ServingConfig
from serving.decide import DECISION_SCHEMA, decide
from serving.online_inputs import event_inputs
from serving.online_ledger import history
from serving.online_response import answer, best_rows
from serving.online_worker import Pending
from serving.reasons import Reason
from serving.scoring import REASONS_SCHEMA, explain_features, score_features


def decide_events(
    conn: Connection,
    pending: list[Pending],
    consents: dict[str, dict[str, Any]],
    names: list[str],
    loaded: dict[str, ModelBundle],
    serving: ServingConfig,
) -> tuple[pl.DataFrame, pl.DataFrame]:
    """Decide events with campaigns, set their responses; (decisions, scores) for the ledger."""
    products = sorted({c.product for p in pending for c in p.campaigns})
    bundles = {k: v for k, v in loaded.items() if k in products}
    rows = _feature_rows(pending, names)
    scores = score_features(rows, bundles).join(_pairs(pending), ["customer_id", "product"], "semi")
    past = history(conn, [p.event.customer_id for p in pending])
    parts = [
        _decide_group(members, day, consents, scores, past, serving)
        for (day, _ids), members in _groups(pending).items()
    ]
    decisions = pl.concat(parts)
    model = _model_reasons(decisions, rows, bundles, pending, serving.reasons_per_offer)
    decisions = _with_reasons(decisions, model, _said(pending))
    best = best_rows(decisions)
    for p in pending:
        p.response = answer(p.event, best.get(p.event.customer_id))
    return decisions, scores


def _feature_rows(pending: list[Pending], names: list[str]) -> pl.DataFrame:
    """One row of features per event's customer, in the snapshot's feature order."""
    return pl.DataFrame(  # by row: 3x faster than one Series per feature column
        [
            (p.event.customer_id, *[p.profile.features.get(n) for n in names])  # type: ignore[union-attr]
            for p in pending
        ],
        schema={"customer_id": pl.String, **dict.fromkeys(names, pl.Float64)},
        orient="row",
        strict=False,
    )


def _pairs(pending: list[Pending]) -> pl.DataFrame:
    """The (customer, product) pairs the events' campaigns ask to score."""
    return pl.DataFrame(
        [(p.event.customer_id, c.product) for p in pending for c in p.campaigns],
        schema={"customer_id": pl.String, "product": pl.String},
        orient="row",
    ).unique()


def _groups(pending: list[Pending]) -> dict[tuple[date, tuple[str, ...]], list[Pending]]:
    """One `decide` call per day for events whose triggers name products: a customer is
    scored only for the triggered products, so the union of campaigns adds nothing for
    them. Triggers naming campaign ids keep their exact campaign set (own group)."""
    groups: dict[tuple[date, tuple[str, ...]], list[Pending]] = {}
    for p in pending:
        by_id = any(t.campaigns for t in p.triggers)
        ids_key = tuple(c.id for c in p.campaigns) if by_id else ()
        groups.setdefault((p.event.booked_at.date(), ids_key), []).append(p)
    return groups


def _decide_group(
    members: list[Pending],
    day: date,
    consents: dict[str, dict[str, Any]],
    scores: pl.DataFrame,
    past: pl.DataFrame,
    serving: ServingConfig,
) -> pl.DataFrame:
    ids = pl.DataFrame({"customer_id": [p.event.customer_id for p in members]})
    inputs = event_inputs(members, consents, scores.join(ids, "customer_id", "semi"))
    inputs = replace(inputs, history=past.join(ids, "customer_id", "semi").lazy())
    campaigns = list({c.id: c for p in members for c in p.campaigns}.values())
    return decide(inputs, campaigns, serving, day).decisions


def _model_reasons(
    decisions: pl.DataFrame,
    rows: pl.DataFrame,
    bundles: dict[str, ModelBundle],
    pending: list[Pending],
    k: int,
) -> pl.DataFrame:
    """The model's top `k` contributions for the selected offers."""
    selected = decisions.filter(pl.col("outcome") == Reason.SELECTED.value)
    if not selected.height:
        return pl.DataFrame(schema=REASONS_SCHEMA)
    as_of = pending[0].profile.features_as_of  # type: ignore[union-attr]
    return explain_features(rows, bundles, selected.select("customer_id", "product"), as_of, k)


def _said(pending: list[Pending]) -> pl.DataFrame:
    """Each customer's trigger sentences, with the event's day filled in."""
    return pl.DataFrame(
        {
            "customer_id": [p.event.customer_id for p in pending],
            "said": [
                [
                    t.reason.format(day=p.event.booked_at.date().isoformat())
                    for t in p.triggers
                    if t.reason
                ]
                for p in pending
            ],
        },
        schema={"customer_id": pl.String, "said": pl.List(pl.String)},
    )


def _with_reasons(decisions: pl.DataFrame, model: pl.DataFrame, said: pl.DataFrame) -> pl.DataFrame:
    """The trigger's sentence first, then the model's top contributions (selected rows only)."""
    out = decisions.join(model, ["customer_id", "product"], "left").join(
        said, "customer_id", "left"
    )
    selected = pl.col("outcome") == Reason.SELECTED.value
    full = pl.concat_list(pl.col("said").fill_null([]), pl.col("reasons").fill_null([]))
    return out.with_columns(
        reasons=pl.when(selected).then(full).otherwise(pl.lit([], pl.List(pl.String)))
    ).select(*DECISION_SCHEMA, "reasons")
