"""Any bank's data: deterministic training, adaptive defaults, calendars from the transactions,
and exact time travel (training as of D on the full data == on the data truncated at D)."""

from __future__ import annotations

from datetime import date, datetime, timedelta
from pathlib import Path

import numpy as np
import polars as pl
import pytest

from features.errors import ConfigError
from features.io import load_tables
from features.schemas import Tables
from features.timetravel import as_known_at
from models.lgbm_params import DEFAULTS, adaptive_params
from models.products import ProductSpec
from training.config import LightGBMParams, TrainingConfig
from training.evaluate import baseline_pipeline, signed_log1p
from training.splits import calendar_warnings, choose_snapshots, data_coverage
from training.train import NoModelTrainedError, train_products

Bank = tuple[Tables, pl.DataFrame, pl.DataFrame]
FAST = TrainingConfig(lightgbm=LightGBMParams(n_estimators=80))


def _booster(result) -> str:
    return result.bundle.estimator.model_.booster_.model_to_string()


def test_same_data_config_and_seed_give_bit_identical_models(bank: Bank, store):
    tables, features, _ = bank
    work_dir, uri = store
    runs = [
        train_products(tables, FAST, ["savings"], work_dir, uri, features=features)["savings"]
        for _ in range(2)
    ]
    assert _booster(runs[0]) == _booster(runs[1])
    assert "few positives (89 in validation; below 100): trained" in runs[0].message
    assert runs[0].metrics == runs[1].metrics and runs[0].baseline == runs[1].baseline
    params = runs[0].bundle.estimator.model_.get_params()
    assert params["deterministic"] and params["force_col_wise"] and params["n_jobs"] == 2


def test_adaptive_rule_scales_with_the_bank_and_an_explicit_value_wins():
    big, small = adaptive_params(600_000, 12_000), adaptive_params(8_000, 160)
    assert big == {"min_child_samples": 300, "num_leaves": 15, "reg_lambda": 1.0}
    assert small == {"min_child_samples": 300, "num_leaves": 7, "reg_lambda": 10.0}
    tiny = adaptive_params(1_000, 400)
    assert tiny == {"min_child_samples": 50, "num_leaves": 7, "reg_lambda": 5.0}
    assert adaptive_params(100, 50)["min_child_samples"] == 20
    fixed = LightGBMParams(min_child_samples=55, num_leaves=31).resolved(1_000, 400)
    assert (fixed["min_child_samples"], fixed["num_leaves"], fixed["reg_lambda"]) == (55, 31, 5.0)
    assert LightGBMParams().resolved(10, 10)["learning_rate"] == DEFAULTS["learning_rate"]


def test_no_trainable_product_is_an_error_naming_each_product(bank: Bank, store):
    tables, features, _ = bank
    with pytest.raises(NoModelTrainedError, match=r"rare: skipped: only \d+ positives"):
        train_products(
            tables, FAST, [ProductSpec(name="rare", credit=False)], *store, features=features
        )


def test_money_columns_are_log_scaled_in_the_baseline():
    x = np.array([[1e6, 1.0], [-99.0, 2.0], [0.0, 3.0]])
    out = signed_log1p(x, [0])
    assert out[:, 1].tolist() == [1.0, 2.0, 3.0]
    assert out[0, 0] == pytest.approx(np.log1p(1e6)) and out[1, 0] == pytest.approx(-np.log(100))
    rng = np.random.default_rng(0)
    money = np.exp(rng.normal(5, 3, 4000)) * rng.choice([-1, 1], 4000)
    y = (
        rng.random(4000) < 1 / (1 + np.exp(-(np.sign(money) * np.log1p(abs(money)) - 5) / 2))
    ).astype(int)
    x = np.column_stack([money, rng.normal(size=4000)])
    from sklearn.metrics import roc_auc_score

    logged = baseline_pipeline(0, [0]).fit(x, y).predict_proba(x)[:, 1]
    assert roc_auc_score(y, logged) > 0.8


def _tables(txn_days: list[date], opened: list[date]) -> Tables:
    n = len(txn_days)
    return Tables.from_frames(
        customers=pl.DataFrame(
            {
                "customer_id": ["a"],
                "birth_date": [date(1980, 1, 1)],
                "customer_since": [date(2020, 1, 1)],
            }
        ),
        transactions=pl.DataFrame(
            {
                "transaction_id": [f"t{i}" for i in range(n)],
                "customer_id": ["a"] * n,
                "booked_at": [datetime(d.year, d.month, d.day) for d in txn_days],
                "amount": [1.0] * n,
                "method": ["card"] * n,
            }
        ),
        products=pl.DataFrame(
            {
                "customer_id": ["a"] * len(opened),
                "product": ["savings"] * len(opened),
                "opened_at": opened,
            }
        ),
    )


def test_calendar_comes_from_the_transactions_not_the_products():
    tables = _tables([date(2024, 1, 3), date(2025, 3, 30)], [date(2025, 12, 1)])
    cov = data_coverage(tables)
    assert (cov.start, cov.end) == (date(2024, 1, 3), date(2025, 3, 31))
    assert "transactions end 2025-03-30 but products run to 2025-12-01" in cov.warnings()[0]
    s = choose_snapshots(cov.start, cov.end, TrainingConfig())
    assert s.test == date(2024, 12, 1) and s.test + timedelta(days=90) <= cov.end
    as_of = data_coverage(tables, as_of=date(2025, 2, 1))
    assert as_of.end == date(2025, 2, 1)


def test_an_explicit_training_date_with_little_history_is_a_warning():
    config = TrainingConfig(train_as_of=(date(2024, 2, 1), date(2024, 6, 1)))
    s = choose_snapshots(date(2024, 1, 3), date(2025, 3, 31), config)
    (warning,) = calendar_warnings(s, date(2024, 1, 3), config)
    assert warning.startswith("training snapshot(s) 2024-02-01 have less than 90 days")


def test_when_the_leakage_rule_leaves_no_room_the_message_says_what_fits():
    with pytest.raises(ConfigError, match=r"--horizon-days \d+ fits \(test 20"):
        choose_snapshots(date(2025, 1, 1), date(2025, 12, 1), TrainingConfig())
    with pytest.raises(ConfigError, match="no horizon of 14 days or more fits"):
        choose_snapshots(date(2025, 1, 1), date(2025, 3, 1), TrainingConfig())


def test_as_known_at_cuts_what_was_not_yet_known_but_not_consents_or_contacts():
    d = date(2025, 6, 1)
    tables = Tables.from_frames(
        customers=pl.DataFrame(
            {
                "customer_id": ["a", "b"],
                "birth_date": [date(1980, 1, 1)] * 2,
                "customer_since": [date(2020, 1, 1), d],
            }
        ),
        transactions=pl.DataFrame(
            {
                "transaction_id": ["t1", "t2"],
                "customer_id": ["a", "a"],
                "booked_at": [datetime(2025, 5, 31, 23, 59), datetime(2025, 6, 1)],
                "amount": [1.0, 2.0],
                "method": ["card"] * 2,
            }
        ),
        products=pl.DataFrame(
            {
                "customer_id": ["a", "a", "a"],
                "product": ["savings", "insurance", "loan"],
                "opened_at": [date(2024, 1, 1), date(2024, 1, 1), d],
                "closed_at": [date(2025, 1, 1), d, None],
            }
        ),
        consents=pl.DataFrame(
            {
                "customer_id": ["a"],
                "payment_data_marketing": [False],
                "email": [True],
                "sms": [True],
                "post": [True],
                "phone": [True],
            }
        ),
        contacts=pl.DataFrame(
            {
                "customer_id": ["a"],
                "product": ["savings"],
                "channel": ["email"],
                "contacted_at": [datetime(2025, 9, 1)],
            }
        ),
    )
    cut = as_known_at(tables, d)
    assert cut.transactions.collect()["transaction_id"].to_list() == ["t1"]
    assert cut.customers.collect()["customer_id"].to_list() == ["a"]
    products = cut.products.collect().sort("product")
    assert products["product"].to_list() == ["insurance", "savings"]
    assert products["closed_at"].to_list() == [None, date(2025, 1, 1)]  # closed on D: still held
    assert cut.consents.collect().equals(tables.consents.collect())
    assert cut.contacts.collect().equals(tables.contacts.collect())


def _truncate_files(src: Path, dst: Path, d: date) -> None:
    """The bank as an export made on D would hold it, written independently of as_known_at."""
    dst.mkdir()
    start = datetime(d.year, d.month, d.day)
    pl.scan_parquet(src / "transactions" / "*.parquet").filter(
        pl.col("booked_at") < start
    ).sink_parquet(dst / "transactions.parquet")
    pl.read_parquet(src / "customers.parquet").filter(pl.col("customer_since") < d).write_parquet(
        dst / "customers.parquet"
    )
    products = pl.read_parquet(src / "products.parquet").filter(pl.col("opened_at") < d)
    products.with_columns(pl.when(pl.col("closed_at") < d).then(pl.col("closed_at"))).write_parquet(
        dst / "products.parquet"
    )
    pl.read_parquet(src / "consents.parquet").write_parquet(dst / "consents.parquet")
    pl.read_parquet(src / "contacts.parquet").filter(pl.col("contacted_at") < start).write_parquet(
        dst / "contacts.parquet"
    )


@pytest.fixture(scope="module")
def small_bank(tmp_path_factory: pytest.TempPathFactory) -> Path:
    from synthbank import generate

    out = tmp_path_factory.mktemp("anybank") / "bank"
    generate(customers=1200, months=18, seed=3, out=out, end=date(2026, 7, 1))
    return out


def test_training_as_of_d_on_full_data_equals_training_on_data_truncated_at_d(
    small_bank: Path, store, tmp_path: Path
):
    d = date(2026, 4, 17)
    config = TrainingConfig(n_train_snapshots=3, lightgbm=LightGBMParams(n_estimators=60))
    product = [ProductSpec(name="credit_card")]
    full = train_products(load_tables(small_bank).tables, config, product, *store, as_of=d)
    _truncate_files(small_bank, tmp_path / "cut", d)
    cut = train_products(load_tables(tmp_path / "cut").tables, config, product, *store)
    a, b = full["credit_card"], cut["credit_card"]
    assert a.trained and b.trained
    snapshots = a.plan.snapshots
    assert snapshots == b.plan.snapshots
    assert snapshots.test + timedelta(days=snapshots.horizon_days) <= d  # no label past D
    assert a.plan.coverage.end == d
    assert _booster(a) == _booster(b)
    assert a.metrics == b.metrics and a.positives == b.positives
