"""Categorisation rules: every category from a realistic row, user overrides, special data."""

from __future__ import annotations

from datetime import datetime
from pathlib import Path

import polars as pl
import pytest
from polars.testing import assert_frame_equal

from features.categories import categorise, explain_categories, load_ruleset
from features.config import FeatureConfig, Rule
from features.errors import ConfigError
from features.schemas import Tables
from tests.features.feature_synth import make_tables

# (counterparty, mcc, method, description, amount, location, country) -> category
ROWS = [
    (("Philips Nederland B.V.", None, "transfer", "SALARIS 2026-10", 3200.0, None, None), "salary"),
    (("Sociale Verzekeringsbank", None, "transfer", "AOW", 1400.0, None, None), "pension"),
    (("ABP", None, "transfer", "PENSIOEN", 900.0, None, None), "pension"),
    (("UWV", None, "transfer", "WW-uitkering", 1200.0, None, None), "benefits"),
    (("Belastingdienst/Toeslagen", None, "transfer", "Zorgtoeslag", 120.0, None, None), "benefits"),
    (
        ("Sociale Verzekeringsbank", None, "transfer", "KINDERBIJSLAG", 290.0, None, None),
        "child_benefit",
    ),
    (("Ymere", None, "standing_order", "Huur", -950.0, None, None), "rent"),
    (
        ("ING Hypotheken", None, "direct_debit", "Hypotheek termijn", -1100.0, None, None),
        "mortgage",
    ),
    (
        ("Vattenfall", None, "direct_debit", "Termijnbedrag energie", -120.0, None, None),
        "utilities",
    ),
    (
        ("Zilveren Kruis", None, "direct_debit", "Premie zorgverzekering", -140.0, None, None),
        "health_insurance",
    ),
    (
        ("Centraal Beheer", None, "direct_debit", "Premie verzekering", -30.0, None, None),
        "insurance_premium",
    ),
    (("Albert Heijn", 5411, "card", None, -45.0, "Utrecht", "NL"), "groceries"),
    (("Vapiano", 5812, "card", None, -35.0, "Amsterdam", "NL"), "dining"),
    (("Thuisbezorgd.nl", 5814, "card", None, -25.0, None, "NL"), "dining"),
    (("Zalando", 5969, "card", None, -60.0, None, "NL"), "shopping_online"),
    (("HEMA", 5311, "card", None, -20.0, "Utrecht", "NL"), "shopping"),
    (("KLM", 4511, "card", None, -400.0, None, "NL"), "travel_air"),
    (("Hotel Playa Sol", 7011, "card", None, -300.0, "Malaga", "ES"), "travel"),
    (("Raisin", None, "standing_order", "Inleg", -500.0, None, None), "savings_out"),
    (("Geldmaat", 6011, "atm", None, -50.0, "Utrecht", "NL"), "cash"),
    (("Intrum", None, "transfer", "Betaling vordering", -80.0, None, None), "debt_collection"),
    ((None, None, "fee", "Betaalpakket", -3.0, None, None), "fees"),
    (("J. de Vries", None, "transfer", "Tikkie", 25.0, None, None), "transfers"),
    (
        ("Notariskantoor Van Dijk", None, "transfer", "NALATENSCHAP", 24000.0, None, None),
        "transfers",
    ),
    ((None, None, "interest", "Rente", 1.2, None, None), "interest"),
    ((None, None, "other", "Misc", 1.0, None, None), "other"),
    (("Acme Ltd", None, "fee", "Monthly account charge", -4.0, None, None), "fees"),
    (("Apotheek De Linde", 5912, "card", None, -20.0, "Utrecht", "NL"), "health"),
    (("Erasmus MC", 8062, "card", None, -100.0, "Rotterdam", "NL"), "health"),
    (("Tandartspraktijk Zuid", None, "transfer", "Factuur", -80.0, None, None), "health"),
    (("Parochie H. Nicolaas", None, "standing_order", "Gift", -10.0, None, None), "religion"),
    (("D66", 8651, "card", None, -5.0, None, "NL"), "politics"),
    (("GroenLinks-PvdA", None, "direct_debit", "Contributie", -5.0, None, None), "politics"),
    (("FNV", None, "direct_debit", "Contributie", -20.0, None, None), "trade_union"),
    (("Holland Casino", 7995, "card", None, -100.0, "Amsterdam", "NL"), "gambling"),
    (("Toto", None, "card", None, -10.0, None, "NL"), "gambling"),
    (("Pink Velvet Club", 5967, "card", None, -80.0, None, "NL"), "adult"),
]
COLS = ("counterparty_name", "mcc", "method", "description", "amount", "location", "country")


def frame(rows: list[tuple]) -> pl.LazyFrame:
    df = pl.DataFrame(
        [dict(zip(COLS, r, strict=True)) for r in rows], schema_overrides={"mcc": pl.Int32}
    )
    df = df.with_columns(
        pl.format("T{}", pl.int_range(pl.len())).alias("transaction_id"),
        pl.lit("C1").alias("customer_id"),
        pl.lit(datetime(2026, 1, 5)).alias("booked_at"),
    )
    return Tables.from_frames(transactions=df).transactions


@pytest.mark.parametrize(("row", "category"), ROWS, ids=[c + "-" + str(r[0]) for r, c in ROWS])
def test_realistic_row_gets_its_category(row: tuple, category: str) -> None:
    got = explain_categories(frame([row]), load_ruleset(FeatureConfig())).collect()
    assert got["category"][0] == category, got["rule"][0]


def test_every_builtin_category_is_exercised() -> None:
    ruleset = load_ruleset(FeatureConfig())
    assert {c for _, c in ROWS} == set(ruleset.categories)
    assert ruleset.special == {"health", "religion", "politics", "trade_union", "gambling", "adult"}


def test_distinct_combination_path_equals_row_by_row() -> None:
    tx = make_tables(4).transactions
    ruleset = load_ruleset(FeatureConfig())
    fast = (
        categorise(tx, ruleset)
        .select("transaction_id", "category", "airport")
        .sort("transaction_id")
    )
    slow = (
        explain_categories(tx, ruleset)
        .select("transaction_id", "category", "airport")
        .sort("transaction_id")
    )
    assert_frame_equal(fast.collect(), slow.collect())


def test_airport_is_a_flag_not_a_category() -> None:
    row = ("HMSHost Schiphol", 5812, "card", None, -15.0, "Schiphol", "NL")
    got = explain_categories(frame([row]), load_ruleset(FeatureConfig())).collect()
    assert got["category"][0] == "dining"
    assert got["airport"][0]


def test_inline_rule_overrides_builtin_by_name_and_adds_category() -> None:
    rules = (
        Rule(name="groceries", category="groceries", mcc=(5411,), counterparty=("^never$",)),
        Rule(name="pets", category="pets", counterparty=("dierenwinkel",), direction="out"),
    )
    ruleset = load_ruleset(FeatureConfig(rules=rules))
    got = explain_categories(
        frame(
            [
                (("Albert Heijn", 5411, "card", None, -45.0, None, "NL")),
                ("Dierenwinkel Bas", 5999, "card", None, -9.0, None, "NL"),
            ]
        ),
        ruleset,
    ).collect()
    assert got["category"].to_list() == ["groceries", "pets"]
    assert got["rule"].to_list() == ["groceries_name", "pets"]
    assert "pets" in ruleset.feature_categories


def test_rules_file_and_disabled_rules(tmp_path: Path) -> None:
    path = tmp_path / "rules.toml"
    path.write_text(
        '[categories.kids]\nmeaning = "children shops"\n'
        '[[rule]]\nname = "kids"\ncategory = "kids"\ncounterparty = ["prenatal"]\n'
    )
    config = FeatureConfig(rules_file=path, disabled_rules=("shopping",))
    ruleset = load_ruleset(config)
    got = explain_categories(
        frame(
            [
                ("Prenatal", 5641, "card", None, -30.0, None, "NL"),
                ("HEMA", 5311, "card", None, -20.0, None, "NL"),
            ]
        ),
        ruleset,
    ).collect()
    assert got["category"].to_list() == ["kids", "shopping"]
    assert got["rule"].to_list() == ["kids", "shopping_other_card"]
    assert ruleset.meanings["kids"] == "children shops"


def test_special_rules_cannot_be_overridden_or_unmarked(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="special"):
        load_ruleset(FeatureConfig(rules=(Rule(name="gambling", category="other", mcc=(7995,)),)))
    with pytest.raises(ConfigError, match="special"):
        load_ruleset(FeatureConfig(disabled_rules=("health_mcc",)))
    path = tmp_path / "r.toml"
    path.write_text("[categories.health]\nspecial = false\n")
    with pytest.raises(ConfigError, match="stays special"):
        load_ruleset(FeatureConfig(rules_file=path))


def test_user_rule_cannot_rescue_a_special_row() -> None:
    rule = Rule(name="my_casino", category="dining", counterparty=("holland casino",))
    got = explain_categories(
        frame([("Holland Casino", 7995, "card", None, -100.0, None, "NL")]),
        load_ruleset(FeatureConfig(rules=(rule,))),
    ).collect()
    assert got["category"][0] == "gambling"


def test_bad_rules_are_config_errors(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="bad counterparty regex"):
        load_ruleset(FeatureConfig(rules=(Rule(name="x", category="x", counterparty=("(",)),)))
    path = tmp_path / "bad.toml"
    path.write_text('[[rule]]\nname = "y"\ncategory = "Bad Name"\nmcc = [1]\n')
    with pytest.raises(ConfigError, match="rule #1"):
        load_ruleset(FeatureConfig(rules_file=path))
    with pytest.raises(ConfigError, match="does not exist"):
        load_ruleset(FeatureConfig(rules_file=tmp_path / "missing.toml"))
    with pytest.raises(ValueError, match="no criterion"):
        Rule(name="z", category="z")
    with pytest.raises(ValueError, match="ascending"):
        FeatureConfig(windows=(90, 30))


def test_iban_rule_matches_ignoring_spaces_and_case() -> None:
    rule = Rule(name="own_savings", category="savings_out", iban=("NL01 TEST 0123 4567 89",))
    df = pl.DataFrame(
        {
            "transaction_id": ["T1", "T2"],
            "customer_id": ["C1", "C1"],
            "booked_at": [datetime(2026, 1, 5), datetime(2026, 1, 6)],
            "amount": [-500.0, -500.0],
            "method": ["transfer", "transfer"],
            "counterparty_name": ["J. Jansen", "J. Jansen"],
            "counterparty_iban": ["nl01test0123456789", "NL99TEST0000000000"],
        }
    )
    ruleset = load_ruleset(FeatureConfig(rules=(rule,)))
    assert "counterparty_iban" in ruleset.key_columns
    tx = Tables.from_frames(transactions=df).transactions
    got = categorise(tx, ruleset).sort("transaction_id").collect()
    assert got["category"].to_list() == ["savings_out", "transfers"]


# ---- eligibility-only families (issue 11): they reach only the distress flag ----


def test_eligibility_only_families_are_listed_once_and_never_features(tmp_path: Path) -> None:
    from features.catalogue import catalogue

    ruleset = load_ruleset(FeatureConfig())
    assert ruleset.eligibility_only == {"debt_collection", "gambling"}
    assert not ruleset.excluded & set(ruleset.feature_categories)
    names = [i.name for i in catalogue(FeatureConfig())]
    assert ruleset.excluded_columns(names) == []
    # the check itself recognises every shape a family takes in a column name
    probes = ["debt_collection_amount_sum_90d", "days_since_last_debt_collection", "gambling"]
    assert ruleset.excluded_columns([*probes, "cash_txn_count_30d"]) == probes
    # a user cannot turn a family back into features, but may add one
    path = tmp_path / "rules.toml"
    path.write_text("[categories.debt_collection]\neligibility_only = false\n")
    with pytest.raises(ConfigError, match=r"debt_collection.*stays eligibility_only"):
        load_ruleset(FeatureConfig(rules_file=path))
    path.write_text('[categories.payday_loans]\neligibility_only = true\nmeaning = "x"\n')
    mine = load_ruleset(FeatureConfig(rules_file=path))
    assert "payday_loans" in mine.eligibility_only
    assert "payday_loans" not in mine.feature_categories


# ---- child benefit has one definition: the rule (issue 11) ----

CHILD_BENEFIT_ROWS = [
    (("SVB", None, "transfer", "KINDERBIJSLAG 3E KWARTAAL 2026", 290.0, None, None), True),
    (("Sociale Verzekeringsbank", None, "transfer", "Kinderbijslag", 290.0, None, None), True),
    (("SVB", None, "transfer", "AOW", 1480.0, None, None), False),
    (("SVB", None, "transfer", "AOW NOVEMBER 2026", 1015.0, None, None), False),
    (("SVB", None, "transfer", "Pensioen AOW", 1480.0, None, None), False),
    (("SVB", None, "transfer", "AOW/pensioen uitkering", 1480.0, None, None), False),
    (("S.V.B.", None, "transfer", "aow-uitkering", 1480.0, None, None), False),
    (("SVB", None, "transfer", None, 1480.0, None, None), False),
    (("SVB", None, "transfer", "Terugbetaling kinderbijslag", -290.0, None, None), False),
]


@pytest.mark.parametrize(("row", "is_child_benefit"), CHILD_BENEFIT_ROWS)
def test_aow_from_the_svb_is_not_child_benefit(row: tuple, is_child_benefit: bool) -> None:
    got = explain_categories(frame([row]), load_ruleset(FeatureConfig())).collect()
    assert (got["category"][0] == "child_benefit") is is_child_benefit, got.to_dicts()


def test_child_benefit_flags_use_the_rule_within_the_window() -> None:
    from datetime import date

    from features.categories import child_benefit_flags

    rows = [r for r, _ in CHILD_BENEFIT_ROWS]
    df = (
        frame(rows)
        .collect()
        .with_columns(
            customer_id=pl.Series([f"c{i}" for i in range(len(rows))]),
            booked_at=pl.lit(datetime(2026, 9, 15, 9, 30)),
        )
    )
    late = df.head(1).with_columns(customer_id=pl.lit("late"), booked_at=datetime(2026, 11, 1))
    tx = Tables.from_frames(transactions=pl.concat([df, late])).transactions
    ruleset = load_ruleset(FeatureConfig())
    got = child_benefit_flags(tx, date(2026, 7, 1), date(2026, 11, 1), ruleset).collect()
    assert dict(got.iter_rows()) == {
        f"c{i}": expected for i, (_, expected) in enumerate(CHILD_BENEFIT_ROWS)
    }  # "late" is booked on `end` itself: outside [start, end)
