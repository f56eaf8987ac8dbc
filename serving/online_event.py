"""The event a real-time decision starts from, validated at the door (see `serving.online`)."""

from __future__ import annotations

import math
from datetime import datetime
from typing import Literal

import polars as pl
from pydantic import BaseModel, ConfigDict, Field, field_validator

from features.casting import to_contract
from features.schemas import METHODS

Method = Literal[METHODS]  # type: ignore[valid-type]


class Event(BaseModel):
    """One transaction as it is booked (the contract's transaction columns) plus `event_id`."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    event_id: str = Field(min_length=1, max_length=100)
    customer_id: str = Field(min_length=1, max_length=100)
    booked_at: datetime
    amount: float
    method: Method
    transaction_id: str | None = Field(None, max_length=200)
    account_id: str | None = Field(None, max_length=100)
    balance_after: float | None = None
    counterparty_name: str | None = Field(None, max_length=200)
    counterparty_iban: str | None = Field(None, max_length=64)
    description: str | None = Field(None, max_length=500)
    mcc: int | None = Field(None, ge=0, le=9999)
    location: str | None = Field(None, max_length=200)
    country: str | None = Field(None, min_length=2, max_length=2)

    @field_validator("amount")
    @classmethod
    def _amount(cls, v: float) -> float:
        if v == 0 or not math.isfinite(v):
            raise ValueError("amount must be a finite non-zero number (credit > 0, debit < 0)")
        return v

    @field_validator("booked_at")
    @classmethod
    def _naive_local(cls, v: datetime) -> datetime:
        """A zoned time becomes naive local time, by the loader's own cast."""
        if v.tzinfo is None:
            return v
        frame = pl.DataFrame({"booked_at": [v]})
        cast = to_contract("booked_at", frame.schema["booked_at"], pl.Datetime("us"))
        assert cast is not None
        return frame.select(cast).item()
