"""A small generated bank with a known opening process, plus its feature frame.

Each customer has a latent propensity `s`; the monthly chance of opening savings is
sigmoid(-4 + 1.3 s); the feature `signal` is `s` plus noise, `noise_*` carry nothing.
`rare` is opened by only three customers (too few positives to train).
"""

from __future__ import annotations

from datetime import date, datetime, timedelta

import numpy as np
import polars as pl

from features.schemas import Tables

START = date(2024, 1, 1)
MONTHS = [date(2024 + m // 12, m % 12 + 1, 1) for m in range(24)]  # 2024-01 .. 2025-12


def _hazard(s: np.ndarray) -> np.ndarray:
    return 1 / (1 + np.exp(-(-4.0 + 1.3 * s)))


def toy_bank(n: int = 3000, seed: int = 0) -> tuple[Tables, pl.DataFrame, pl.DataFrame]:
    """(tables, features, truth) for `n` customers over 24 months."""
    rng = np.random.default_rng(seed)
    ids = np.array([f"c{i:05d}" for i in range(n)])
    s = rng.normal(size=n)
    h = _hazard(s)
    opens = rng.random((n, len(MONTHS))) < h[:, None]
    first = np.where(opens.any(axis=1), opens.argmax(axis=1), -1)
    openers = np.flatnonzero(first >= 0)
    opened = [MONTHS[first[i]] + timedelta(days=int(rng.integers(0, 28))) for i in openers]
    products = pl.DataFrame(
        {
            "customer_id": [*ids[openers], *ids[:3]],
            "product": ["savings"] * len(openers) + ["rare"] * 3,
            "opened_at": [*opened, *[date(2025, 2, 10)] * 3],
        }
    )
    tables = Tables.from_frames(
        customers=pl.DataFrame(
            {
                "customer_id": ids,
                "birth_date": [
                    date(1970, 1, 1) + timedelta(days=int(d)) for d in rng.integers(0, 12000, n)
                ],
                "customer_since": [date(2020, 1, 1)] * n,
            }
        ),
        products=products,
        consents=pl.DataFrame(
            {"customer_id": ids, "payment_data_marketing": rng.random(n) > 0.05}
            | {c: [True] * n for c in ("email", "sms", "post", "phone")}
        ),
        transactions=pl.DataFrame(
            {
                "transaction_id": [f"t{i}" for i in range(2 * n)],
                "customer_id": np.concatenate([ids, ids]),
                "booked_at": [datetime(2024, 1, 1)] * n + [datetime(2025, 12, 31, 12)] * n,
                "amount": rng.normal(100, 10, 2 * n),
                "method": ["transfer"] * (2 * n),
            }
        ),
    )
    features = pl.concat(
        pl.DataFrame(
            {
                "customer_id": ids,
                "as_of": [month] * n,
                "signal": s + rng.normal(0, 0.5, n),
                "noise_a": rng.normal(size=n),
                "noise_b": rng.integers(0, 5, n),
                "flag": rng.random(n) < 0.5,
            }
        )
        for month in MONTHS
    )
    truth = pl.DataFrame(
        {
            "customer_id": np.repeat(ids, len(MONTHS)),
            "product": "savings",
            "month": MONTHS * n,
            "p_open": np.repeat(h, len(MONTHS)),
        }
    )
    return tables, features, truth
