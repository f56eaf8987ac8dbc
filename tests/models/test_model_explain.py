from __future__ import annotations

import numpy as np
import polars as pl

from models.bundle import ModelBundle
from models.explain import top_contributions
from tests.models.modeldata import numeric_frame


def test_top_contributions_are_the_largest_positive_ones(fitted_bundle: ModelBundle):
    frame, _ = numeric_frame(40, 11)
    reasons = top_contributions(fitted_bundle, frame, k=2)
    contrib = fitted_bundle.contributions(frame)[:, :-1]
    assert (reasons["contribution"] > 0).all()
    for cid, group in reasons.group_by("customer_id"):
        row = int(str(cid[0])[1:])
        expected = np.sort(contrib[row][contrib[row] > 0])[::-1][:2]
        np.testing.assert_allclose(group.sort("rank")["contribution"].to_numpy(), expected)
        top = group.filter(pl.col("rank") == 1).row(0, named=True)
        assert top["value"] == frame[row, top["feature"]]
    assert reasons["customer_id"].n_unique() <= 40


def test_only_the_rows_asked_are_explained(fitted_bundle: ModelBundle):
    frame, _ = numeric_frame(40, 12)
    reasons = top_contributions(fitted_bundle, frame.head(3), k=3)
    assert set(reasons["customer_id"]) <= {"c00000", "c00001", "c00002"}
    assert reasons.height <= 9
    empty = top_contributions(fitted_bundle, frame.head(0))
    assert empty.height == 0 and empty.columns == reasons.columns


def test_missing_values_are_null_in_the_reasons(fitted_bundle: ModelBundle):
    frame, _ = numeric_frame(200, 13)
    frame = frame.with_columns(pl.lit(None, pl.Float64).alias("salary_amount_sum_90d"))
    reasons = top_contributions(fitted_bundle, frame, k=5)
    missing = reasons.filter(pl.col("feature") == "salary_amount_sum_90d")
    assert missing.height > 0 and missing["value"].null_count() == missing.height
    assert not reasons["value"].is_nan().any()
