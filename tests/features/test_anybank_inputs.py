"""Input formats a foreign bank exports (CSV dialect, time zones), currency in texts, coverage
warnings."""

from __future__ import annotations

from datetime import date, datetime
from pathlib import Path

import polars as pl
import pytest

from features.catalogue import catalogue, reason_text
from features.config import CsvOptions, FeatureConfig, InputOptions
from features.errors import ContractError
from features.io import load_tables
from features.schemas import Tables
from features.validate import coverage_warnings
from tests.features.test_validate import TODAY, good_tables, write

SEMICOLON_COMMA = InputOptions(csv=CsvOptions(separator=";", decimal_comma=True))


def _write_dialect(dir_: Path, sep: str, encoding: str = "utf8", comma: bool = False) -> Path:
    """The good tables as CSV in another dialect (amounts as text with a decimal comma)."""
    dir_.mkdir()
    for name, df in good_tables().items():
        if comma and "amount" in df.columns:
            text = df["amount"].map_elements(lambda v: f"{v:,.2f}".replace(",", "_"), pl.String)
            text = text.str.replace(".", ",", literal=True).str.replace_all("_", ".")
            df = df.with_columns(text.alias("amount"))
        if name == "transactions":
            df = df.with_columns(pl.col("counterparty_name").replace("Jumbo", "Jümbo Café"))
        data = df.write_csv(separator=sep)
        (dir_ / f"{name}.csv").write_bytes(data.encode(encoding))
    return dir_


def test_semicolon_and_decimal_comma_read_with_the_options(tmp_path: Path) -> None:
    data = _write_dialect(tmp_path / "d", ";", comma=True)
    txn = load_tables(data, today=TODAY, options=SEMICOLON_COMMA).tables.transactions.collect()
    assert txn.sort("transaction_id")["amount"].to_list() == [2500.0, -12.5, -40.0, 10.0]


def test_latin1_file_reads_with_the_encoding_option(tmp_path: Path) -> None:
    data = _write_dialect(tmp_path / "d", ",", encoding="latin1")
    options = InputOptions(csv=CsvOptions(encoding="latin1"))
    txn = load_tables(data, today=TODAY, options=options).tables.transactions.collect()
    assert "Jümbo Café" in txn["counterparty_name"].to_list()
    with pytest.raises(ContractError, match=r"set \[data.csv\] encoding = 'latin1'"):
        load_tables(data, today=TODAY)


def test_messages_name_the_option_when_a_file_looks_like_another_dialect(tmp_path: Path) -> None:
    data = _write_dialect(tmp_path / "d", ";", comma=True)
    with pytest.raises(
        ContractError, match=r"looks semicolon-separated: set \[data.csv\] separator = ';'"
    ):
        load_tables(data, today=TODAY)
    semicolon_only = InputOptions(csv=CsvOptions(separator=";"))
    with pytest.raises(ContractError, match=r"set \[data.csv\] decimal_comma = true") as info:
        load_tables(data, today=TODAY, options=semicolon_only)
    assert str(info.value).count("transactions.amount") == 1


def _zoned_tables(tmp_path: Path, booked: pl.Series) -> Path:
    tables = good_tables()
    tables["transactions"] = tables["transactions"].with_columns(booked.alias("booked_at"))
    return write(tmp_path / "z", tables)


def test_zoned_timestamps_are_converted_to_the_configured_zone(tmp_path: Path) -> None:
    utc = pl.Series([datetime(2026, 1, 1, 23, 30)] * 4).dt.replace_time_zone("UTC")
    data = _zoned_tables(tmp_path, utc)
    london = load_tables(data, today=TODAY, options=InputOptions(timezone="Europe/London"))
    amsterdam = load_tables(data, today=TODAY)
    assert london.tables.transactions.collect()["booked_at"][0] == datetime(2026, 1, 1, 23, 30)
    assert amsterdam.tables.transactions.collect()["booked_at"][0] == datetime(2026, 1, 2, 0, 30)


def test_iso_text_with_an_offset_is_converted_and_naive_text_is_local(tmp_path: Path) -> None:
    tables = good_tables()
    text = [
        "2026-01-01T23:30:00+00:00",
        "2026-01-02 10:00:00",
        "2026-02-01 12:00:00.5Z",
        "2026-03-01",
    ]
    tables["transactions"] = tables["transactions"].with_columns(pl.Series("booked_at", text))
    data = write(tmp_path / "c", tables, "csv")
    txn = load_tables(data, today=TODAY).tables.transactions.collect().sort("transaction_id")
    assert txn["booked_at"].to_list() == [
        datetime(2026, 1, 2, 0, 30),  # UTC converted to Amsterdam
        datetime(2026, 1, 2, 10, 0),  # naive: already local
        datetime(2026, 2, 1, 13, 0, 0, 500000),
        datetime(2026, 3, 1),
    ]


def test_an_unknown_time_zone_is_a_config_error() -> None:
    with pytest.raises(ValueError, match="unknown time zone 'Mars/Olympus'"):
        InputOptions(timezone="Mars/Olympus")


def test_currency_is_used_in_meanings_and_reason_texts() -> None:
    gbp = FeatureConfig(currency="GBP")
    meanings = {i.name: i.meaning for i in catalogue(gbp)}
    assert "GBP" in meanings["inflow_amount_sum_30d"] and "EUR" not in " ".join(meanings.values())
    assert reason_text("balance_last", 1234.0, date(2026, 1, 1), gbp).endswith("GBP 1,234")
    row = {"large_inflow_30d": True, "large_inflow_amount_max_30d": 25000.0}
    row["days_since_last_large_inflow"] = 10
    assert "GBP 25,000" in reason_text("large_inflow_30d", row, date(2026, 1, 1), gbp)
    assert "EUR 1,234" in reason_text("balance_last", 1234.0, date(2026, 1, 1))
    with pytest.raises(ValueError, match="currency"):
        FeatureConfig(currency="pounds")


def test_coverage_warnings_for_a_foreign_export() -> None:
    txn = good_tables()["transactions"].with_columns(
        pl.lit("Some Shop Ltd").alias("counterparty_name"), pl.lit(None, pl.Int32).alias("mcc")
    )
    products = pl.DataFrame(
        {
            "customer_id": ["c1", "c2"],
            "product": ["savings", "loan"],
            "opened_at": [date(2021, 1, 1), date(2026, 9, 1)],
        }
    )
    tables = Tables.from_frames(
        customers=good_tables()["customers"], transactions=txn, products=products
    )
    warnings = coverage_warnings(tables, FeatureConfig(), ["savings"])
    assert len(warnings) == 3
    assert "transactions end 2026-03-01 but products run to 2026-09-01" in warnings[0]
    assert "100% of 4 rows match no categorisation rule beyond their booking" in warnings[1]
    assert warnings[2].startswith("products: loan have no [[products]] entry")
    assert coverage_warnings(tables, FeatureConfig(uncategorised_warning=1.0), None) == warnings[:1]
