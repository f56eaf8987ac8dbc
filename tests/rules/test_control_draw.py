"""The control-group draw is part of the ledger contract (docs/ledger.md): the same key gives
the same number on every machine and every version of every library, forever."""

from __future__ import annotations

import hashlib

import numpy as np
import polars as pl
import pytest

from serving.arbitration import CONTROL_DRAW_KEY, control_draw, in_control

# Golden values: if one of these changes, customers move between control and treated and
# every uplift measurement spanning the change is destroyed. Never update them.
GOLDEN = [
    ("C000001", "savings-inflow-2026", 0.1339711626999236),
    ("C000002", "savings-inflow-2026", 0.8289224017695541),
    ("C000001", "credit-card-2026", 0.5210567247038708),
    ("klant-é-42", "kampagne 1", 0.6055978996661769),
    ("", "", 0.11541212820465263),
]


def test_golden_values() -> None:
    got = control_draw([g[0] for g in GOLDEN], [g[1] for g in GOLDEN])
    assert got.tolist() == [g[2] for g in GOLDEN]


def test_definition_as_documented() -> None:
    """BLAKE2b-64 keyed, big-endian, top 53 bits over 2**53 (docs/ledger.md)."""
    cust, camp = "C123456", "travel-insurance-2026"
    digest = hashlib.blake2b(
        f"{cust}\x1f{camp}".encode(), digest_size=8, key=CONTROL_DRAW_KEY
    ).digest()
    assert control_draw([cust], [camp])[0] == (int.from_bytes(digest, "big") >> 11) / 2**53


def test_shares_are_honoured_and_independent_of_row_order() -> None:
    n = 20_000
    frame = pl.DataFrame(
        {
            "customer_id": [f"C{i:06d}" for i in range(n)],
            "campaign_id": ["c1"] * n,
            "control_share": [0.1] * n,
        }
    )
    share = in_control(frame).mean()
    assert share == pytest.approx(0.1, abs=0.01)
    shuffled = frame.sample(fraction=1.0, shuffle=True, seed=3)
    a = frame.with_columns(in_control(frame)).sort("customer_id")["in_control"]
    b = shuffled.with_columns(in_control(shuffled)).sort("customer_id")["in_control"]
    assert a.equals(b)
    assert np.all(control_draw(["x"] * 3, ["a", "b", "c"]) < 1.0)
