"""Typed serving configuration: campaigns, the contact policy and the serving settings.

The models are sections of the one config file (`propensity.config.AppConfig`); the default
campaigns ship in `serving/campaigns.toml`. Unknown keys are errors so a typo never silently
weakens a rule.
"""

from __future__ import annotations

import hashlib
import json
import tomllib
from datetime import date
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from features.config import DistressConfig
from features.config_errors import config_error
from features.errors import ConfigError
from features.ids import (
    MAX_COUNT,
    MAX_WINDOW_DAYS,
    date_problem,
    name_problem,
)
from models.products import DEFAULT_PRODUCT_SPECS, ProductSpec

Channel = Literal["email", "sms", "post", "phone"]
DEFAULT_CAMPAIGNS = Path(__file__).with_name("campaigns.toml")


class ContactPolicy(BaseModel):
    """Caps and cooldowns; a window of N days around the run date (see docs in `contact_policy`)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    max_contacts: int = Field(
        2, ge=0, le=MAX_COUNT, description="contacts per customer over all channels"
    )
    contacts_window_days: int = Field(30, ge=1, le=MAX_WINDOW_DAYS)
    max_phone: int = Field(1, ge=0, le=MAX_COUNT, description="phone calls per customer")
    phone_window_days: int = Field(90, ge=1, le=MAX_WINDOW_DAYS)
    product_cooldown_days: int = Field(
        90, ge=0, le=MAX_WINDOW_DAYS, description="no same product after an offer"
    )
    decline_cooldown_days: int = Field(
        180, ge=0, le=MAX_WINDOW_DAYS, description="no same product after a decline"
    )


class Campaign(BaseModel):
    """One campaign: a product offered through some channels between two dates."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    id: str = Field(min_length=1)
    product: str = Field(min_length=1)
    channels: tuple[Channel, ...] = Field(min_length=1, description="in order of preference")
    start: date
    end: date
    capacity: dict[Channel, int] = Field(description="contacts per channel per run")

    min_propensity: float = Field(0.0, ge=0.0, le=1.0)
    value: float = Field(1.0, gt=0.0, description="value of one acceptance, in the bank's currency")
    control_share: float = Field(0.1, ge=0.0, lt=1.0)

    @field_validator("id", "product")
    @classmethod
    def _name(cls, value: str) -> str:
        """Ids become file names and ledger keys: the grammar of `features.ids`."""
        problem = name_problem(value)
        if problem is not None:
            raise ValueError(f"{value[:40]!r} {problem} (example: savings-q4)")
        return value

    @field_validator("start", "end")
    @classmethod
    def _date(cls, value: date) -> date:
        problem = date_problem(value)
        if problem is not None:
            raise ValueError(f"{value.isoformat()} {problem}")
        return value

    @model_validator(mode="after")
    def _check(self) -> Campaign:
        if self.end < self.start:
            raise ValueError(f"campaign {self.id}: end {self.end} is before start {self.start}")
        if len(set(self.channels)) != len(self.channels):
            raise ValueError(f"campaign {self.id}: a channel is listed twice in channels")
        missing = [c for c in self.channels if c not in self.capacity]
        extra = [c for c in self.capacity if c not in self.channels]
        if missing or extra:
            raise ValueError(
                f"campaign {self.id}: capacity must name exactly the channels "
                f"(missing: {missing}, not in channels: {extra})"
            )
        if any(not 0 <= v <= MAX_COUNT for v in self.capacity.values()):
            raise ValueError(f"campaign {self.id}: capacity must be 0..{MAX_COUNT:,}")
        return self

    def active_on(self, day: date) -> bool:
        return self.start <= day <= self.end


class ServingConfig(BaseModel):
    """Serving settings other than campaigns.

    A *current customer* (who may be phoned) holds a product that is open on the run date or
    has a transaction in the `current_customer_days` days before it.
    """

    model_config = ConfigDict(extra="forbid", frozen=True)

    policy: ContactPolicy = ContactPolicy()
    channel_factors: dict[Channel, float] = Field(
        default_factory=lambda: {"email": 0.6, "sms": 0.7, "post": 0.8, "phone": 1.0},
        description="relative effect of a channel on acceptance, used in expected value",
    )
    current_customer_days: int = Field(90, ge=1, le=MAX_WINDOW_DAYS)
    adult_age: int = Field(18, ge=0, description="below this age: no offer, no channel")
    child_benefit_days: int = Field(
        120,
        ge=1,
        le=MAX_WINDOW_DAYS,
        description="child benefit (the categorisation rule) seen in this window",
    )
    distress: DistressConfig = Field(
        DistressConfig(), description="passed through to features.distress (thresholds)"
    )
    products: tuple[ProductSpec, ...] = DEFAULT_PRODUCT_SPECS
    ledger_url: str | None = Field(None, description="None = SQLite file in the work directory")
    reasons_per_offer: int = Field(3, ge=0, le=100)
    lock_timeout_seconds: float = Field(
        60.0, gt=0, le=86_400, description="wait this long for the ledger lock, then fail"
    )
    global_control_share: float = Field(
        0.0,
        ge=0.0,
        lt=1.0,
        description="share of customers held out of every campaign (0: no global control group)",
    )
    global_control_days: int = Field(
        365, ge=1, le=3660, description="the global control group is redrawn every this many days"
    )
    global_control_start: date = Field(
        date(2026, 1, 1), description="first day of the first global-control period"
    )

    def factor(self, channel: str) -> float:
        return self.channel_factors.get(channel, 1.0)  # type: ignore[call-overload]


def config_hash(config: ServingConfig, campaigns: list[Campaign]) -> str:
    """A short stable hash of the settings that decided a run (stored with the run)."""
    payload = json.dumps(
        {
            "config": config.model_dump(mode="json"),
            "campaigns": [c.model_dump(mode="json") for c in campaigns],
        },
        sort_keys=True,
    )
    return hashlib.sha256(payload.encode()).hexdigest()[:16]


def _read_toml(path: Path) -> dict[str, Any]:
    try:
        with Path(path).open("rb") as fh:
            return tomllib.load(fh)
    except FileNotFoundError:
        raise ConfigError(f"campaign file not found: {path}") from None
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{path}: not valid TOML: {exc}") from None


def load_campaigns(path: Path) -> list[Campaign]:
    """Campaigns from the `[[campaigns]]` array of a TOML file; ids must be unique.

    The file holds campaigns only: the policy and every other setting live in the one config
    file (`propensity.toml`), so there is no second dialect to keep in step.
    """
    raw = _read_toml(path)
    unknown = sorted(set(raw) - {"campaigns"})
    if unknown:
        raise ConfigError(
            f"{path}: only [[campaigns]] belongs in a campaigns file; put {unknown} in "
            "propensity.toml (e.g. [policy] max_contacts = 2)"
        )
    items = raw.get("campaigns", [])
    if not isinstance(items, list):
        raise ConfigError(f"{path}: 'campaigns' must be an array of tables ([[campaigns]])")
    campaigns = []
    for i, item in enumerate(items):
        name = item.get("id", i) if isinstance(item, dict) else i
        try:
            campaigns.append(Campaign.model_validate(item))
        except ValidationError as err:
            raise config_error(err, f"{path}: campaigns[{name}]") from None
    ids = [c.id for c in campaigns]
    dupes = sorted({i for i in ids if ids.count(i) > 1})
    if dupes:
        raise ConfigError(f"{path}: campaign id(s) used twice: {dupes}")
    return campaigns
