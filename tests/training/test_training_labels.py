from __future__ import annotations

from datetime import date, datetime

import polars as pl
import pytest

from features.consent import consenting_tables
from features.errors import ConfigError
from features.expressions import full_years
from features.schemas import Tables
from models.products import DEFAULT_PRODUCT_SPECS, ProductSpec, resolve_products
from training.labels import build_labels

T = date(2026, 1, 1)
H = 90  # window [2026-01-01, 2026-04-01)


def _bank() -> Tables:
    ids = list("abcdefghijkl")
    born = {i: date(1980, 5, 5) for i in ids} | {"f": date(2010, 1, 1), "g": date(2008, 1, 1)}
    since = {i: date(2020, 1, 1) for i in ids} | {"j": date(2026, 2, 1), "k": T}
    products = [
        ("a", "savings", date(2026, 1, 1), None),  # opens on T: in the window
        ("b", "savings", date(2026, 3, 31), None),  # last day of the window
        ("c", "savings", date(2026, 4, 1), None),  # first day after the window
        ("d", "savings", date(2025, 5, 1), None),  # holder at T
        ("e", "savings", date(2024, 5, 1), date(2025, 10, 1)),  # closed before T: not a holder
        ("f", "savings", date(2026, 2, 1), None),  # minor
        ("g", "savings", date(2026, 2, 1), None),  # 18 on T exactly
        ("h", "savings", date(2026, 2, 1), None),  # objected
        ("i", "savings", date(2026, 2, 1), None),  # no consent row
        ("l", "savings", date(2025, 12, 31), None),  # opened the day before T: holder
        ("a", "loan", date(2026, 2, 2), None),  # another bank's product
    ]
    consents = [(i, i != "h", True, True, True, True) for i in ids if i != "i"]
    return Tables.from_frames(
        customers=pl.DataFrame(
            {
                "customer_id": ids,
                "birth_date": [born[i] for i in ids],
                "customer_since": [since[i] for i in ids],
            }
        ),
        products=pl.DataFrame(
            products, schema=["customer_id", "product", "opened_at", "closed_at"], orient="row"
        ),
        consents=pl.DataFrame(
            consents,
            schema=["customer_id", "payment_data_marketing", "email", "sms", "post", "phone"],
            orient="row",
        ),
        transactions=pl.DataFrame(
            {
                "transaction_id": ["t1", "t2", "t3"],
                "customer_id": ["a", "h", "i"],
                "booked_at": [datetime(2025, 6, 1)] * 3,
                "amount": [10.0, 20.0, 30.0],
                "method": ["card"] * 3,
            }
        ),
    )


def _labels(product: ProductSpec) -> dict[str, int]:
    tables = consenting_tables(_bank())
    frame = build_labels(tables, product, [T], H).collect()
    assert frame["as_of"].unique().to_list() == [T]
    return dict(zip(frame["customer_id"], frame["label"], strict=True))


def test_savings_population_and_labels_match_the_hand_built_example():
    assert _labels(ProductSpec(name="savings")) == {
        "a": 1,
        "b": 1,
        "c": 0,
        "e": 0,
        "g": 1,
    }


def test_product_names_from_the_data_work_without_code():
    labels = _labels(ProductSpec(name="loan", credit=True))
    assert labels["a"] == 1
    assert sum(labels.values()) == 1
    assert {"f", "h", "i", "j", "k"}.isdisjoint(labels)


def test_a_product_outside_the_defaults_must_say_whether_it_is_credit():
    with pytest.raises(ValueError, match="set credit = true or false"):
        ProductSpec(name="loan")
    assert ProductSpec(name="credit_card").credit and not ProductSpec(name="savings").credit
    with pytest.raises(ConfigError, match=r"product 'loan' has no \[\[products\]\] entry"):
        resolve_products(DEFAULT_PRODUCT_SPECS, ["loan"])


def test_min_age_is_configurable():
    labels = _labels(ProductSpec(name="savings", min_age=0))
    assert labels["f"] == 1


def test_objectors_and_customers_without_consent_leave_every_table():
    tables = consenting_tables(_bank())
    for name in ("transactions", "customers", "products", "consents"):
        ids = set(getattr(tables, name).collect()["customer_id"])
        assert ids and not ids & {"h", "i"}, name


def test_several_snapshots_are_stacked():
    tables = consenting_tables(_bank())
    frame = build_labels(tables, ProductSpec(name="savings"), [T, date(2026, 3, 1)], H).collect()
    later = frame.filter(pl.col("as_of") == date(2026, 3, 1))
    # at 2026-03-01, a (opened 01-01) holds savings; c opens on 04-01, inside [03-01, 05-30)
    assert "a" not in later["customer_id"].to_list()
    assert later.filter(pl.col("customer_id") == "c")["label"].item() == 1


def test_age_counts_the_birthday_itself():
    frame = pl.DataFrame({"b": [date(2008, 1, 1), date(2008, 1, 2), date(2000, 2, 29)]})
    ages = frame.select(full_years(pl.col("b"), date(2026, 1, 1)).alias("age"))["age"].to_list()
    assert ages == [18, 17, 25]
