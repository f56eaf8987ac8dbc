"""Scores, the one decision engine (`serving.decide.decide`) and reasons for event batches."""

from __future__ import annotations

from dataclasses import dataclass, replace
from datetime import date
from functools import lru_cache
from typing import Any

import numpy as np
import polars as pl
from sqlalchemy.engine import Connection

from models.bundle import FeatureMismatchError, ModelBundle
from models.explain import top_contributions_matrix
from serving.config import ServingConfig
from serving.decide import DECISION_SCHEMA, decide
from serving.online_inputs import event_inputs
from serving.online_ledger import history
from serving.online_response import answer, best_rows
from serving.online_worker import Pending
from serving.reasons import Reason
from serving.scoring import REASONS_SCHEMA, SCORE_SCHEMA, reason_sentences, score_frame


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
    scores = _scores(pending, rows, bundles)
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


def _feature_rows(pending: list[Pending], names: list[str]) -> FeatureRows:
    """One row of features per event's customer, in the snapshot's feature order."""
    values = np.array(
        [[p.profile.features.get(n) for n in names] for p in pending],  # type: ignore[union-attr]
        dtype=np.float64,  # None -> NaN, LightGBM's missing value (as `to_matrix`)
    ).reshape(len(pending), len(names))
    return FeatureRows([p.event.customer_id for p in pending], names, values)


@dataclass(frozen=True)
class FeatureRows:
    """Customers' feature rows as a float matrix (columns in the snapshot's order)."""

    ids: list[str]
    names: list[str]
    values: np.ndarray

    def for_model(self, bundle: ModelBundle, rows: list[int]) -> np.ndarray:
        """The rows `rows` in the model's feature order (checked by name, as `matrix`)."""
        return self.values[np.ix_(rows, _columns(tuple(self.names), tuple(bundle.feature_names)))]


@lru_cache(maxsize=64)
def _columns(have: tuple[str, ...], want: tuple[str, ...]) -> np.ndarray:
    """Positions of a model's features in the snapshot's order (once per model and snapshot)."""
    where = {n: i for i, n in enumerate(have)}
    missing = [n for n in want if n not in where]
    if missing:
        raise FeatureMismatchError(
            f"the online snapshot lacks {len(missing)} feature(s) of the model, e.g. {missing[:5]}"
        )
    return np.array([where[n] for n in want], dtype=np.intp)


def _scores(
    pending: list[Pending], rows: FeatureRows, bundles: dict[str, ModelBundle]
) -> pl.DataFrame:
    """Scores of the (customer, product) pairs the events' campaigns ask for, no others."""
    wanted: dict[str, set[str]] = {}
    for p in pending:
        for c in p.campaigns:
            wanted.setdefault(c.product, set()).add(p.event.customer_id)
    return score_rows(rows, {k: sorted(v) for k, v in wanted.items()}, bundles)


def score_rows(
    rows: FeatureRows, wanted: dict[str, list[str]], bundles: dict[str, ModelBundle]
) -> pl.DataFrame:
    """`serving.scoring.score_features` of the customers `wanted` for each product, from the
    matrix: the bundle's own `predict_matrix`, the same numbers as the batch."""
    position = {cid: i for i, cid in enumerate(rows.ids)}
    parts = []
    for product, ids in wanted.items():
        if not ids or product not in bundles:
            continue
        bundle = bundles[product]
        proba = bundle.predict_matrix(rows.for_model(bundle, [position[i] for i in ids]))
        parts.append(score_frame(ids, product, proba, bundle))
    return pl.concat(parts) if parts else pl.DataFrame(schema=SCORE_SCHEMA)


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
    rows: FeatureRows,
    bundles: dict[str, ModelBundle],
    pending: list[Pending],
    k: int,
) -> pl.DataFrame:
    """The model's top `k` contributions for the selected offers."""
    selected = decisions.filter(pl.col("outcome") == Reason.SELECTED.value)
    if not selected.height:
        return pl.DataFrame(schema=REASONS_SCHEMA)
    as_of = pending[0].profile.features_as_of  # type: ignore[union-attr]
    return explain_rows(rows, selected.select("customer_id", "product"), bundles, as_of, k)


def explain_rows(
    rows: FeatureRows,
    pairs: pl.DataFrame,
    bundles: dict[str, ModelBundle],
    as_of: date,
    k: int,
) -> pl.DataFrame:
    """`serving.scoring.explain_features` of (customer, product) pairs from the matrix."""
    position = {cid: i for i, cid in enumerate(rows.ids)}
    parts = []
    for product, ids in pairs.group_by("product").agg("customer_id").iter_rows():
        bundle = bundles[product]
        values = rows.for_model(bundle, [position[i] for i in ids])
        top = top_contributions_matrix(bundle, values, np.asarray(ids, dtype=object), max(k, 1))
        parts.append(reason_sentences(top, product, as_of))
    return pl.concat(parts) if parts else pl.DataFrame(schema=REASONS_SCHEMA)


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
