"""Serving benchmark: score 1M customers for 4 products and select against a ledger of 2M
past contacts, writing the ledger and the channel files.

Setup (not timed): a numpy feature frame for N customers with realistic feature names, one
small real LightGBM + calibrator bundle per product trained on a sample, contract tables for
the same customers, and a ledger pre-filled with M past contacts. Timed: scoring, selection
(consent, eligibility, policy joins, arbitration, control), reasons for the selected, the
ledger transaction (bulk inserts) and the channel files.

usage: python benchmarks/serving.py [--customers 1000000] [--contacts 2000000] [--ledger-url URL]
"""

from __future__ import annotations

import argparse
import logging
import resource
import shutil
import sys
import tempfile
import time
from datetime import date, datetime, timedelta
from pathlib import Path

# this file is named like the `serving` package: keep its directory off the import path
sys.path[:] = [p for p in sys.path if Path(p or ".").resolve() != Path(__file__).resolve().parent]

import numpy as np  # noqa: E402
import polars as pl  # noqa: E402
from rich.console import Console  # noqa: E402
from rich.table import Table  # noqa: E402

from features.schemas import Tables  # noqa: E402
from models.bundle import ModelBundle, library_versions, schema_hash  # noqa: E402
from models.calibration import ScoreCalibrator  # noqa: E402
from models.estimator import PropensityEstimator  # noqa: E402
from serving import ledger as lg  # noqa: E402
from serving.batch import run_selection  # noqa: E402
from serving.config import Campaign, ServingConfig  # noqa: E402
from serving.ledger_io import insert_frame  # noqa: E402
from serving.scoring import explain_features, score_features  # noqa: E402

AS_OF = date(2026, 11, 2)
PRODUCTS = ("savings", "insurance", "credit_card", "child_savings")
FEATURES = [
    "salary_amount_sum_90d",
    "salary_amount_sum_365d",
    "days_since_last_salary",
    "age_years",
    "large_inflow_amount_max_90d",
    "airport_txn_count_30d",
    "airport_txn_count_365d",
    "foreign_txn_count_90d",
    "child_benefit_amount_sum_90d",
    "days_since_first_child_benefit",
    "balance_mean_90d",
    "balance_min_90d",
    "rent_amount_sum_90d",
    "dining_txn_count_30d",
    "shopping_online_amount_sum_90d",
    "savings_out_amount_sum_90d",
    "cash_txn_count_90d",
    "insurance_premium_amount_sum_365d",
    "txn_count_30d",
    "txn_count_365d",
]


def synth_features(n: int, rng: np.random.Generator) -> pl.DataFrame:
    data = {"customer_id": [f"c{i:07d}" for i in range(n)]}
    for j, name in enumerate(FEATURES):
        value = rng.gamma(2.0 + j % 3, 100.0 * (1 + j % 5), n)
        # like the real features: counts and days are whole numbers, amounts in cents
        data[name] = np.round(value, 0 if ("count" in name or "days" in name) else 2)
    data["age_years"] = rng.integers(10, 90, n).astype(np.float64)
    return pl.DataFrame(data)


def train_bundle(
    product: str, features: pl.DataFrame, k: int, rng: np.random.Generator
) -> ModelBundle:
    sample = features.head(50_000)
    x = sample.select(FEATURES).to_numpy()
    logit = -3.0 + 0.004 * x[:, k] - 0.002 * x[:, k + 4] + rng.normal(0, 1, len(x))
    y = (rng.random(len(x)) < 1 / (1 + np.exp(-logit))).astype(int)
    est = PropensityEstimator(n_estimators=60, num_leaves=15, early_stopping_rounds=0, n_jobs=2)
    est.fit(x, y)
    cal = ScoreCalibrator().fit(est.predict_proba(x)[:, 1], y)
    return ModelBundle(
        product, list(FEATURES), est, cal, schema_hash(FEATURES), library_versions(), version="1"
    )


def synth_tables(n: int, rng: np.random.Generator, ids: pl.Series) -> Tables:
    birth = [date(1940, 1, 1) + timedelta(days=int(d)) for d in rng.integers(0, 30000, n)]
    customers = pl.DataFrame(
        {"customer_id": ids, "birth_date": birth, "customer_since": date(2010, 1, 1)}
    )
    consents = pl.DataFrame(
        {
            "customer_id": ids,
            "payment_data_marketing": rng.random(n) < 0.9,
            **{c: rng.random(n) < 0.7 for c in ("email", "sms", "post", "phone")},
        }
    )
    held = rng.random(n) < 0.3
    products = pl.DataFrame(
        {
            "customer_id": ids.filter(pl.Series(held)),
            "product": "savings",
            "opened_at": date(2020, 1, 1),
        }
    )
    return Tables.from_frames(customers=customers, consents=consents, products=products)


def fill_ledger(url: str, ids: pl.Series, m: int, rng: np.random.Generator) -> None:
    hist = pl.DataFrame(
        {
            "customer_id": ids.gather(rng.integers(0, len(ids), m)),
            "product": pl.Series(np.array(PRODUCTS)[rng.integers(0, 4, m)]),
            "channel": pl.Series(
                np.array(["email", "sms", "post", "phone"])[rng.integers(0, 4, m)]
            ),
            "contacted_at": [
                datetime(2025, 11, 1) + timedelta(hours=int(h))
                for h in rng.integers(0, 365 * 24, m)
            ],
            "campaign_id": "old",
            "outcome": pl.Series(np.array([None, "declined", "accepted"])[rng.integers(0, 3, m)]),
            "run_id": "history",
            "source": "run",
        }
    )
    engine = lg.make_engine(url)
    with lg.locked(engine) as conn:
        insert_frame(conn, lg.contacts, hist)
    engine.dispose()


def campaigns() -> list[Campaign]:
    chans = ("email", "sms", "post", "phone")
    caps = {"email": 20_000, "sms": 10_000, "post": 5_000, "phone": 1_000}
    return [
        Campaign(
            id=f"bench-{p}",
            product=p,
            channels=chans,
            start=date(2026, 1, 1),
            end=date(2026, 12, 31),
            capacity=caps,
            min_propensity=0.15,
            value=100.0,
            control_share=0.1,
        )
        for p in PRODUCTS
    ]


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--customers", type=int, default=1_000_000)
    ap.add_argument("--contacts", type=int, default=2_000_000)
    ap.add_argument("--ledger-url", default=None)
    args = ap.parse_args()
    logging.basicConfig(level=logging.WARNING, format="%(asctime)s %(name)s: %(message)s")
    logging.getLogger("serving.batch").setLevel(logging.INFO)
    rng = np.random.default_rng(7)
    work = Path(tempfile.mkdtemp(prefix="bench-serving-"))
    url = args.ledger_url or f"sqlite:///{work / 'ledger.sqlite'}"
    t0 = time.perf_counter()
    features = synth_features(args.customers, rng)
    bundles = {p: train_bundle(p, features, k, rng) for k, p in enumerate(PRODUCTS)}
    tables = synth_tables(args.customers, rng, features["customer_id"])
    fill_ledger(url, features["customer_id"], args.contacts, rng)
    setup = time.perf_counter() - t0
    figures = {}
    t = time.perf_counter()
    scores = score_features(features, bundles)
    figures["score 4 products"] = time.perf_counter() - t
    t = time.perf_counter()
    summary = run_selection(
        tables,
        scores,
        campaigns(),
        ServingConfig(),
        as_of=AS_OF,
        run_id="bench",
        out_dir=work / "out",
        ledger_url=url,
        explain=lambda pairs: explain_features(features, bundles, pairs, AS_OF),
    )
    figures["select + reasons + ledger + files"] = time.perf_counter() - t
    figures["total (timed)"] = (
        figures["score 4 products"] + figures["select + reasons + ledger + files"]
    )
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024 / 1024
    table = Table(
        title=f"serving benchmark ({args.customers:,} customers, {args.contacts:,} past contacts)"
    )
    table.add_column("step")
    table.add_column("value", justify="right")
    table.add_row("setup (not timed)", f"{setup:.1f} s")
    for k, v in figures.items():
        table.add_row(k, f"{v:.1f} s")
    table.add_row("decisions written", f"{int(summary.counts['n'].sum()):,}")
    table.add_row("selected / control", f"{summary.n('selected'):,} / {summary.n('control'):,}")
    table.add_row("peak RSS (whole process)", f"{peak:.2f} GiB")
    table.add_row("ledger", url.split("?")[0])
    Console().print(table)
    if not args.ledger_url:
        shutil.rmtree(work, ignore_errors=True)  # the SQLite ledger is ~0.5 GB


if __name__ == "__main__":
    main()
