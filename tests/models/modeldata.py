"""Generated numeric feature frames for model tests (test data, not mocks)."""

from __future__ import annotations

import numpy as np
import polars as pl

NAMES = ["salary_amount_sum_90d", "airport_txn_count_30d", "age_years", "noise_a", "noise_b"]


def numeric_frame(n: int, seed: int) -> tuple[pl.DataFrame, np.ndarray]:
    """Features where the first two columns drive the opening probability."""
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(n, len(NAMES)))
    p = 1 / (1 + np.exp(-(1.5 * x[:, 0] + 1.0 * x[:, 1] - 3.0)))
    y = (rng.random(n) < p).astype(np.int64)
    frame = pl.DataFrame(x, schema=NAMES).with_columns(
        pl.Series("customer_id", [f"c{i:05d}" for i in range(n)])
    )
    return frame.select("customer_id", *NAMES), y
