"""Typed settings of the real-time service (`[online]` in propensity.toml).

Trigger rules say which events may start a decision at once: an event matches a trigger when
every criterion given holds (categories and signals: any listed one). The campaigns decided are
those named, plus every active campaign of the products named. Tokens are stored only as
salted hashes (see `propensity.tokens`).
"""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

Signal = Literal["airport", "abroad", "large_inflow"]
Role = Literal["events", "service_desk"]
ROLES: tuple[str, ...] = ("events", "service_desk")


class Trigger(BaseModel):
    """Which events trigger which campaigns (every given criterion must hold)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    name: str = Field(min_length=1)
    categories: tuple[str, ...] = Field((), description="any of these transaction categories")
    signals: tuple[Signal, ...] = Field((), description="any of: airport, abroad, large_inflow")
    methods: tuple[str, ...] = Field((), description="any of these methods (empty: any)")
    direction: Literal["in", "out", "any"] = "any"
    products: tuple[str, ...] = Field((), description="every active campaign of these products")
    campaigns: tuple[str, ...] = Field((), description="these campaign ids")
    reason: str = Field("", description="plain-language reason shown with the offer")

    @model_validator(mode="after")
    def _check(self) -> Trigger:
        if not (self.categories or self.signals):
            raise ValueError(f"trigger {self.name!r} needs categories or signals")
        if not (self.products or self.campaigns):
            raise ValueError(f"trigger {self.name!r} needs products or campaigns")
        return self


class ApiToken(BaseModel):
    """One API token: a name, a role and the salted hash of the secret (never the secret)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    name: str = Field(min_length=1)
    role: Role
    hash: str = Field(min_length=20, description="scrypt$<salt hex>$<hash hex>")


DEFAULT_TRIGGERS: tuple[Trigger, ...] = (
    Trigger(
        name="travel",
        signals=("airport", "abroad"),
        methods=("card", "atm"),
        direction="out",
        products=("insurance", "credit_card"),
        reason="card payment at an airport or abroad on {day}",
    ),
    Trigger(
        name="child_benefit",
        categories=("child_benefit",),
        direction="in",
        products=("child_savings",),
        reason="child benefit received on {day}",
    ),
    Trigger(
        name="large_inflow",
        signals=("large_inflow",),
        direction="in",
        products=("savings",),
        reason="large incoming payment on {day}",
    ),
)


class OnlineConfig(BaseModel):
    """`propensity serve`: triggers, tokens, model reloading and request limits."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    triggers: tuple[Trigger, ...] = DEFAULT_TRIGGERS
    tokens: tuple[ApiToken, ...] = ()
    alias: str = Field("champion", description="registry alias of the models served")
    model_poll_seconds: float = Field(30.0, gt=0, description="how often the alias is checked")
    max_body_bytes: int = Field(16_384, ge=256, description="larger requests get 413")
