"""Champion vs challenger on the same customers once the attribution window has data."""

from __future__ import annotations

from datetime import date

import numpy as np
import polars as pl
import pytest
from sklearn.metrics import roc_auc_score

from monitoring.shadow import compare

AS_OF = date(2026, 3, 1)


def test_compare_scores_both_models_against_openings() -> None:
    rng = np.random.default_rng(3)
    n = 400
    opened = rng.random(n) < 0.2
    champion = np.clip(0.2 + 0.3 * opened + rng.normal(0, 0.2, n), 0.01, 0.99)  # informative
    challenger = rng.uniform(0.01, 0.99, n)  # noise
    ids = [f"C{i}" for i in range(n)]
    stored = pl.DataFrame(
        {
            "run_id": "r1",
            "customer_id": ids,
            "product": "savings",
            "champion_version": "3",
            "challenger_version": "4",
            "champion_score": champion,
            "challenger_score": challenger,
        }
    )
    runs = pl.DataFrame({"run_id": ["r1"], "as_of": [AS_OF]})
    days = rng.integers(0, 60, n)
    products = pl.LazyFrame(
        {
            "customer_id": [c for c, o in zip(ids, opened, strict=True) if o] + ["C0"],
            "product": ["savings"] * (int(opened.sum()) + 1),
            # every opener within the window; C0 also opened long before the run (ignored)
            "opened_at": [
                date.fromordinal(AS_OF.toordinal() + int(d))
                for d, o in zip(days, opened, strict=True)
                if o
            ]
            + [date(2020, 1, 1)],
        }
    )
    out = compare(stored, runs, products, 90, date(2026, 9, 1)).row(0, named=True)
    assert (out["customers"], out["converters"]) == (n, int(opened.sum()))
    assert out["champion_roc_auc"] == pytest.approx(roc_auc_score(opened, champion))
    assert out["challenger_roc_auc"] == pytest.approx(roc_auc_score(opened, challenger))
    assert out["champion_roc_auc"] > 0.8 > out["challenger_roc_auc"]
    assert out["champion_brier"] == pytest.approx(float(((champion - opened) ** 2).mean()))
    assert out["observed_rate"] == pytest.approx(opened.mean())
