"""Statistical sanity of the generated bank: the behaviour the models are meant to learn."""

from __future__ import annotations

from datetime import date

import polars as pl
from synthbank_world import END, MONTHS, Bank

SPECIAL_MCCS = {5912, 8062, 8011, 8661, 8651, 7995, 5967}


def _age(col: str = "birth_date") -> pl.Expr:
    return (pl.lit(END) - pl.col(col)).dt.total_days() / 365.25


def test_salary_arrives_once_a_month_for_every_full_month(bank: Bank) -> None:
    salary = bank.transactions.filter(pl.col("description").str.starts_with("SALARIS "))
    per_month = salary.group_by("customer_id", pl.col("booked_at").dt.truncate("1mo")).len()
    assert (per_month["len"] == 1).all()
    assert (salary["method"] == "transfer").all() and (salary["amount"] > 0).all()
    label = salary["description"].str.slice(8)
    assert (label == salary["booked_at"].dt.strftime("%Y-%m")).all()
    first_full = bank.customers.select(
        "customer_id", first=pl.col("customer_since").dt.offset_by("1mo").dt.truncate("1mo")
    )
    months = per_month.group_by("customer_id").len().join(first_full, on="customer_id")
    full = months.with_columns(
        expected=pl.max_horizontal(
            pl.lit(0),
            (pl.lit(END).dt.year() * 12 + pl.lit(END).dt.month())
            - (
                pl.max_horizontal(pl.col("first"), pl.lit(bank.first_month)).dt.year() * 12
                + pl.max_horizontal(pl.col("first"), pl.lit(bank.first_month)).dt.month()
            ),
        )
    )
    assert (full["len"] >= full["expected"]).all()
    assert salary["customer_id"].n_unique() > 0.4 * bank.customers.height


def test_child_benefit_is_quarterly_and_goes_to_adults(bank: Bank) -> None:
    kb = bank.transactions.filter(pl.col("description") == "KINDERBIJSLAG")
    assert kb.height > 0
    assert set(kb["booked_at"].dt.month().unique()) <= {1, 4, 7, 10}
    assert (kb["counterparty_name"] == "Sociale Verzekeringsbank").all()
    assert (
        kb.group_by("customer_id", pl.col("booked_at").dt.truncate("1mo")).len()["len"].max() == 1
    )
    ages = kb.join(bank.customers, on="customer_id").select(_age())
    assert ages.to_series().min() >= 18
    # a birth during the period: no benefit, then a first payment and later ones every quarter
    first = kb.group_by("customer_id").agg(pl.col("booked_at").min().dt.date())
    late = first.filter(pl.col("booked_at") > date(2025, 12, 31))
    assert late.height > 0


def test_running_balance_is_consistent_per_account(bank: Bank) -> None:
    tx = bank.transactions
    gap = tx.select(
        (pl.col("balance_after") - pl.col("balance_after").shift(1) - pl.col("amount"))
        .over("account_id")
        .abs()
        .max()
    ).item()
    assert gap < 0.005
    assert tx.group_by("account_id").agg(pl.col("customer_id").n_unique())["customer_id"].max() == 1


def test_special_categories_travel_and_distress_are_present(bank: Bank) -> None:
    tx = bank.transactions
    assert set(tx["mcc"].drop_nulls().unique()) >= SPECIAL_MCCS
    names = set(tx["counterparty_name"].drop_nulls().unique())
    assert {"FNV", "Holland Casino", "KLM", "Intrum", "Raisin", "Allianz Reisverzekering"} <= names
    assert tx.filter(pl.col("location") == "Schiphol").height > 0
    assert tx.filter(pl.col("country").is_not_null() & (pl.col("country") != "NL")).height > 0
    assert tx.filter(pl.col("description").is_in(["NALATENSCHAP", "BONUS"])).height > 0
    low = tx.group_by("customer_id").agg((pl.col("balance_after") < 0).mean().alias("neg"))
    share = (low["neg"] > 0.5).mean()
    assert 0.005 < share < 0.15


def test_population_mix_and_consents(bank: Bank) -> None:
    ages = bank.customers.select(_age()).to_series()
    assert 0.02 < (ages < 18).mean() < 0.07
    assert (ages >= 12).all()
    assert 0.15 < (ages >= 67).mean() < 0.4
    joined = (bank.customers["customer_since"] >= bank.first_month).mean()
    assert 0.03 < joined < 0.15
    objected = 1 - bank.consents["payment_data_marketing"].mean()
    assert 0.05 <= objected <= 0.10
    missing = 1 - bank.consents.height / bank.customers.height
    assert 0.005 < missing < 0.04
    share = bank.consents.select(pl.col("email", "sms", "post", "phone").mean()).row(0)
    assert share[0] > share[1] and share[2] > share[3]


def test_rows_per_customer_month_near_21(bank: Bank) -> None:
    per = bank.transactions.height / (bank.customers.height * MONTHS)
    assert 15 < per < 30


def test_truth_covers_non_holders_only_and_every_opening(bank: Bank) -> None:
    truth, products = bank.truth, bank.products
    assert truth.select(pl.col("p_open").is_between(0, 1).all()).item()
    held = truth.join(products, on=["customer_id", "product"]).filter(
        (pl.col("opened_at") < pl.col("month"))
        & (pl.col("closed_at").is_null() | (pl.col("closed_at") >= pl.col("month")))
    )
    assert held.is_empty()
    opened = products.filter(pl.col("opened_at") >= bank.first_month).with_columns(
        month=pl.col("opened_at").dt.truncate("1mo")
    )
    matched = opened.join(truth, on=["customer_id", "product", "month"], how="left")
    assert matched["p_open"].null_count() == 0 and (matched["p_open"] > 0).all()
    assert products.filter(pl.col("opened_at") < bank.first_month).height > 0
    assert products["closed_at"].null_count() < products.height


def test_quarterly_opening_rates_are_realistic(bank: Bank) -> None:
    """A few percent per quarter per product among non-holders (child savings lower)."""
    quarter_starts = sorted(bank.truth["month"].unique())[: MONTHS - 2 : 3]
    rows = []
    for start in quarter_starts:
        end = pl.lit(start).dt.offset_by("3mo")
        base = bank.truth.filter(pl.col("month") == start).select("customer_id", "product")
        opens = bank.products.filter(pl.col("opened_at").is_between(start, end, closed="left"))
        got = opens.select("customer_id", "product").unique().with_columns(opened=pl.lit(True))
        rows.append(base.join(got, on=["customer_id", "product"], how="left"))
    rates = dict(
        pl.concat(rows)
        .group_by("product")
        .agg(pl.col("opened").fill_null(False).mean())
        .iter_rows()
    )
    for product in ("savings", "insurance", "credit_card"):
        assert 0.008 < rates[product] < 0.07, (product, rates)
    assert 0.001 < rates["child_savings"] < 0.04, rates


def test_child_benefit_start_lifts_child_savings(bank: Bank) -> None:
    kb = bank.transactions.filter(pl.col("description") == "KINDERBIJSLAG")
    receivers = kb["customer_id"].unique()
    p = (
        bank.truth.filter(pl.col("product") == "child_savings")
        .group_by(pl.col("customer_id").is_in(receivers.implode()).alias("receives"))
        .agg(pl.col("p_open").mean())
    )
    lift = dict(p.iter_rows())
    assert lift[True] > 5 * lift[False]


def test_contact_history_respects_todays_consents(bank: Bank) -> None:
    per_month = bank.contacts.height / (bank.customers.height * MONTHS)
    assert 0.01 < per_month < 0.05
    assert bank.contacts["campaign_id"].str.starts_with("CMP-").all()
    joined = bank.contacts.join(bank.consents, on="customer_id", how="left").join(
        bank.customers, on="customer_id"
    )
    assert joined["payment_data_marketing"].fill_null(False).all()
    permitted = pl.coalesce(
        pl.when(pl.col("channel") == ch).then(pl.col(ch))
        for ch in ("email", "sms", "post", "phone")
    )
    assert joined.select(permitted.all()).item()
    assert (joined["contacted_at"].dt.date() >= joined["birth_date"].dt.offset_by("18y")).all()
    assert set(joined["outcome"].drop_nulls()) == {"accepted", "declined", "no_response"}


def _month_after(col: str, k: int) -> pl.Expr:
    return pl.col(col).dt.truncate("1mo").dt.offset_by(f"{k}mo")


def _lift(truth: pl.DataFrame, events: pl.DataFrame, k: int) -> float:
    """Mean p_open k months after the events' months, relative to the mean p_open."""
    after = events.select("customer_id", month=_month_after("booked_at", k).dt.date())
    lifted = truth.join(after.unique(), on=["customer_id", "month"])["p_open"].mean()
    return lifted / truth["p_open"].mean()


def test_events_lift_p_open_with_a_lag_for_a_few_months(bank: Bank) -> None:
    """A large inflow lifts savings and a flight booking (airline, MCC 4511) lifts travel
    insurance: a little in the next month, most from the month after that, for months."""
    tx = bank.transactions
    cases = (
        ("savings", tx.filter(pl.col("amount") >= 10_000)),
        ("insurance", tx.filter(pl.col("mcc") == 4511)),
    )
    for product, events in cases:
        truth = bank.truth.filter(pl.col("product") == product)
        lifts = [_lift(truth, events, k) for k in (1, 2, 3)]
        assert lifts[1] > 2 and lifts[2] > 2, (product, lifts)
        assert lifts[0] < lifts[1], (product, lifts)


def test_flights_are_booked_one_to_three_months_before_the_trip(bank: Bank) -> None:
    """The airline payment is the leading signal of a trip: Schiphol follows 1-3 months later."""
    tx = bank.transactions
    month = pl.col("booked_at").dt.truncate("1mo").dt.date()
    bookings = tx.filter(pl.col("mcc") == 4511).select("customer_id", month=month).unique()
    bookings = bookings.filter(pl.col("month") < date(2026, 8, 1))  # the trip lies in the data
    trips = tx.filter(pl.col("location") == "Schiphol").select("customer_id", trip=month).unique()
    lead = (
        bookings.join(trips, on="customer_id")
        .with_columns(
            k=(pl.col("trip").dt.year() - pl.col("month").dt.year()) * 12
            + pl.col("trip").dt.month().cast(pl.Int32)
            - pl.col("month").dt.month().cast(pl.Int32)
        )
        .group_by("customer_id", "month")
        .agg(pl.col("k").is_between(1, 3).any().alias("trip_follows"))
    )
    assert bookings.height > 20
    assert lead["trip_follows"].mean() > 0.95
    assert lead.height == bookings.height  # every booker flies at some point


def test_minors_never_open_products(bank: Bank) -> None:
    truth = bank.truth.join(bank.customers, on="customer_id")
    minor = pl.col("month") < pl.col("birth_date").dt.offset_by("18y")
    assert truth.filter(minor)["p_open"].max() == 0
    assert truth.filter(~minor)["p_open"].min() > 0
    opened = bank.products.join(bank.customers, on="customer_id")
    assert (opened["opened_at"] >= opened["birth_date"].dt.offset_by("18y")).all()
