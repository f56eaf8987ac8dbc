"""Scoring consenting customers with the registered models, and reasons for the chosen few.

The decision engine (`serving.pipeline`) removes objectors (and customers without a consent
row) before any feature is built and calls these functions. Reasons (LightGBM
`pred_contrib` -> plain sentences) are computed only for the customers who need them,
through an `Explainer` that `serving.batch` calls after selection.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from datetime import date

import numpy as np
import polars as pl

from features.catalogue import reason_text
from features.config import FeatureConfig
from features.consent import consenting_ids, restrict
from features.pipeline import build_features
from features.schemas import Tables
from models.bundle import ModelBundle
from models.explain import top_contributions

log = logging.getLogger(__name__)

SCORE_SCHEMA = {
    "customer_id": pl.String(),
    "product": pl.String(),
    "propensity": pl.Float64(),
    "model_version": pl.String(),
}
REASONS_SCHEMA = {
    "customer_id": pl.String(),
    "product": pl.String(),
    "reasons": pl.List(pl.String()),
}

# (customer_id, product) pairs -> (customer_id, product, reasons: list of sentences)
Explainer = Callable[[pl.DataFrame], pl.DataFrame]


def model_versions(scores: pl.DataFrame) -> dict[str, str]:
    """Product -> the model version that scored it, in product order."""
    pairs = scores.select("product", "model_version").unique("product").sort("product")
    return dict(pairs.iter_rows())


def score_features(features: pl.DataFrame, bundles: dict[str, ModelBundle]) -> pl.DataFrame:
    """Long scores (customer_id, product, propensity, model_version), one row per product."""
    parts = []
    for product, bundle in bundles.items():
        proba = bundle.predict_proba(features)
        parts.append(score_frame(features["customer_id"], product, proba, bundle))
        log.info(
            "scored %d customer(s) for %s (model version %s)",
            features.height,
            product,
            bundle.version,
        )
    return pl.concat(parts) if parts else pl.DataFrame(schema=SCORE_SCHEMA)


def score_frame(
    ids: pl.Series | list[str], product: str, proba: np.ndarray, bundle: ModelBundle
) -> pl.DataFrame:
    """One product's scores in `SCORE_SCHEMA` (the batch's and the real-time service's)."""
    return pl.DataFrame(
        {
            "customer_id": ids,
            "product": [product] * len(proba),
            "propensity": np.asarray(proba, dtype=np.float64),
            "model_version": [bundle.version] * len(proba),
        },
        schema=SCORE_SCHEMA,
    )


def explain_features(
    features: pl.DataFrame,
    bundles: dict[str, ModelBundle],
    pairs: pl.DataFrame,
    as_of: date,
    k: int = 3,
    feature_config: FeatureConfig | None = None,
) -> pl.DataFrame:
    """Top-k positive contributions of each (customer, product) pair as plain sentences
    (amounts in the currency of `feature_config`)."""
    parts = []
    for product, group in pairs.partition_by("product", as_dict=True).items():
        rows = features.join(group.select("customer_id"), "customer_id", "semi")
        top = top_contributions(bundles[product[0]], rows, k=max(k, 1))
        parts.append(reason_sentences(top, product[0], as_of, feature_config))
    return pl.concat(parts) if parts else pl.DataFrame(schema=REASONS_SCHEMA)


def reason_sentences(
    top: pl.DataFrame, product: str, as_of: date, feature_config: FeatureConfig | None = None
) -> pl.DataFrame:
    """REASONS_SCHEMA rows from one product's `top_contributions`: each customer's sentences
    in rank order (the batch's and the real-time service's one wording)."""
    # sentences show whole currency units, counts and days: 2 decimals keeps them and lets equal
    # values share one sentence
    top = top.with_columns(pl.col("value").round(2))
    texts = top.select("feature", "value").unique()
    sentences = [reason_text(f, v, as_of, feature_config) for f, v in texts.iter_rows()]
    texts = texts.with_columns(text=pl.Series(sentences, dtype=pl.String()))
    return (
        top.join(texts, ["feature", "value"], "left", nulls_equal=True)
        .sort("customer_id", "rank")
        .group_by("customer_id", maintain_order=True)
        .agg(reasons=pl.col("text"))
        .with_columns(product=pl.lit(product))
        .select(list(REASONS_SCHEMA))
    )


def feature_explainer(
    tables: Tables,
    as_of: date,
    bundles: dict[str, ModelBundle],
    feature_config: FeatureConfig | None = None,
    k: int = 3,
) -> Explainer:
    """An Explainer that builds features for the asked customers only, then explains them."""

    def explain(pairs: pl.DataFrame) -> pl.DataFrame:
        if pairs.is_empty():
            return pl.DataFrame(schema=REASONS_SCHEMA)
        ids = pairs.select("customer_id").unique().lazy()
        subset = restrict(tables, consenting_ids(tables).join(ids, "customer_id", "semi"))
        features = build_features(subset, as_of, feature_config or FeatureConfig()).collect()
        return explain_features(features, bundles, pairs, as_of, k, feature_config)

    return explain
