"""Typed, frozen configuration of the feature pipeline.

Everything a bank may want to tune without code lives here: the windows, the thresholds of the
derived life events, extra or overriding categorisation rules, the distress check and the
products whose holdings become features.
"""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator


class Rule(BaseModel):
    """One categorisation rule: every given criterion must match (AND); within a criterion any
    listed value matches (OR). Rules are tried in order and the first match wins."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    name: str = Field(min_length=1)
    category: str = Field(min_length=1, pattern=r"^[a-z][a-z0-9_]*$")
    counterparty: tuple[str, ...] = Field((), description="case-insensitive regexes on the name")
    iban: tuple[str, ...] = Field((), description="exact IBANs (spaces and case ignored)")
    mcc: tuple[int, ...] = ()
    mcc_range: tuple[tuple[int, int], ...] = Field((), description="inclusive [low, high] pairs")
    method: tuple[str, ...] = ()
    description: tuple[str, ...] = Field((), description="case-insensitive whole-word keywords")
    direction: Literal["in", "out", "any"] = "any"

    @model_validator(mode="after")
    def _has_criterion(self) -> Rule:
        if not (
            self.counterparty
            or self.iban
            or self.mcc
            or self.mcc_range
            or self.method
            or self.description
        ):
            raise ValueError(f"rule {self.name!r} has no criterion (counterparty, mcc, ...)")
        return self


class DistressConfig(BaseModel):
    """Responsible-lending check (an eligibility rule, never a model feature)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    window_days: int = Field(90, gt=0)
    debt_collection_min_count: int | None = Field(1, ge=1, description="None disables")
    days_below_zero: int | None = Field(30, ge=1, description="None disables")
    gambling_min_count: int | None = Field(3, ge=1, description="None disables")


class CsvOptions(BaseModel):
    """How the bank's CSV exports are written (`[data.csv]`); Parquet files ignore this."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    separator: str = Field(",", min_length=1, max_length=1, description='e.g. ";" or "\\t"')
    decimal_comma: bool = Field(False, description='amounts written "12,50" instead of "12.50"')
    encoding: Literal["utf8", "utf8-lossy", "latin1", "cp1252"] = Field(
        "utf8", description="file encoding; latin1/cp1252 are re-encoded to UTF-8 on read"
    )


class InputOptions(BaseModel):
    """How to read a bank's files: CSV dialect and the local time zone of its timestamps."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    csv: CsvOptions = CsvOptions()
    timezone: str = Field(
        "Europe/Amsterdam",
        description="the bank's local time: zoned timestamps are converted to it, naive ones "
        "are taken as already local",
    )

    @field_validator("timezone")
    @classmethod
    def _known_zone(cls, v: str) -> str:
        from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

        try:
            ZoneInfo(v)
        except (ZoneInfoNotFoundError, ValueError):
            raise ValueError(
                f"unknown time zone {v!r}; use an IANA name like 'Europe/London'"
            ) from None
        return v


class FeatureConfig(BaseModel):
    """Configuration of `features.pipeline.build_features`."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    windows: tuple[int, ...] = (30, 90, 365)
    home_country: str = "NL"
    currency: str = Field(
        "EUR",
        pattern=r"^[A-Z]{3}$",
        description="ISO 4217 code of the bank's money; every money threshold below is in it",
    )
    large_inflow_absolute: float = Field(10_000.0, gt=0, description="in `currency`; always large")
    large_inflow_income_multiple: float = Field(
        3.0, gt=0, description="large when at least this many months of the customer's income"
    )
    large_inflow_min_amount: float = Field(
        2_500.0, ge=0, description="floor for the income-relative rule, in `currency`"
    )
    large_inflow_days: int = Field(30, gt=0, description="window of the large-inflow event")
    salary_increase_ratio: float = Field(0.05, gt=0, description="mean salary up by at least")
    child_benefit_new_days: int = Field(90, gt=0)
    first_trip_days: int = Field(30, gt=0)
    uncategorised_warning: float = Field(
        0.2, ge=0, le=1, description="validate warns above this share of uncategorised rows"
    )
    rules: tuple[Rule, ...] = Field((), description="inline rules, tried before built-in ones")
    rules_file: Path | None = Field(None, description="a TOML file of [[rule]] tables")
    disabled_rules: tuple[str, ...] = Field((), description="built-in rule names to drop")
    products: tuple[str, ...] | None = Field(
        None, description="products for holds_ features; None: defaults + those in the data"
    )
    recency_categories: tuple[str, ...] = (
        "salary",
        "pension",
        "benefits",
        "child_benefit",
        "rent",
        "mortgage",
        "insurance_premium",
        "travel_air",
        "savings_out",
        "cash",
        "dining",
        "shopping_online",
    )
    distress: DistressConfig = DistressConfig()

    @field_validator("windows")
    @classmethod
    def _windows_sorted(cls, v: tuple[int, ...]) -> tuple[int, ...]:
        if not v or any(w <= 0 for w in v) or list(v) != sorted(set(v)):
            raise ValueError("windows must be positive, unique and ascending, e.g. (30, 90, 365)")
        return v

    @property
    def max_window(self) -> int:
        return self.windows[-1]
