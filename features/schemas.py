"""The input data contract (version 1) as polars dtypes, and the `Tables` bundle every stage uses.

See shared/docs/data-contract.md; this module is the single source of column names and types.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

import polars as pl

CONTRACT_VERSION = 1

METHODS = (
    "card",
    "atm",
    "transfer",
    "direct_debit",
    "standing_order",
    "cash",
    "interest",
    "fee",
    "other",
)
CHANNELS = ("email", "sms", "post", "phone")
OUTCOMES = ("accepted", "declined", "no_response")
DEFAULT_PRODUCTS = ("savings", "insurance", "credit_card", "child_savings")


@dataclass(frozen=True)
class Column:
    name: str
    dtype: pl.DataType
    required: bool = True


@dataclass(frozen=True)
class TableSpec:
    name: str
    columns: tuple[Column, ...]
    key: tuple[str, ...] = ()
    required: bool = True

    @property
    def schema(self) -> dict[str, pl.DataType]:
        return {c.name: c.dtype for c in self.columns}

    @property
    def required_columns(self) -> tuple[str, ...]:
        return tuple(c.name for c in self.columns if c.required)


DATETIME = pl.Datetime("us")

TRANSACTIONS = TableSpec(
    "transactions",
    (
        Column("transaction_id", pl.String()),
        Column("customer_id", pl.String()),
        Column("account_id", pl.String(), required=False),
        Column("booked_at", DATETIME),
        Column("amount", pl.Float64()),
        Column("balance_after", pl.Float64(), required=False),
        Column("method", pl.String()),
        Column("counterparty_name", pl.String(), required=False),
        Column("counterparty_iban", pl.String(), required=False),
        Column("description", pl.String(), required=False),
        Column("mcc", pl.Int32(), required=False),
        Column("location", pl.String(), required=False),
        Column("country", pl.String(), required=False),
    ),
    key=("transaction_id",),
)
CUSTOMERS = TableSpec(
    "customers",
    (
        Column("customer_id", pl.String()),
        Column("birth_date", pl.Date()),
        Column("customer_since", pl.Date()),
    ),
    key=("customer_id",),
)
PRODUCTS = TableSpec(
    "products",
    (
        Column("customer_id", pl.String()),
        Column("product", pl.String()),
        Column("opened_at", pl.Date()),
        Column("closed_at", pl.Date(), required=False),
    ),
    key=("customer_id", "product", "opened_at"),
)
CONSENTS = TableSpec(
    "consents",
    (
        Column("customer_id", pl.String()),
        Column("payment_data_marketing", pl.Boolean()),
        Column("email", pl.Boolean()),
        Column("sms", pl.Boolean()),
        Column("post", pl.Boolean()),
        Column("phone", pl.Boolean()),
        Column("updated_at", DATETIME, required=False),
    ),
    key=("customer_id",),
)
CONTACTS = TableSpec(
    "contacts",
    (
        Column("customer_id", pl.String()),
        Column("product", pl.String()),
        Column("channel", pl.String()),
        Column("contacted_at", DATETIME),
        Column("campaign_id", pl.String(), required=False),
        Column("outcome", pl.String(), required=False),
    ),
    required=False,
)

SPECS: dict[str, TableSpec] = {
    s.name: s for s in (TRANSACTIONS, CUSTOMERS, PRODUCTS, CONSENTS, CONTACTS)
}


def empty_frame(spec: TableSpec) -> pl.LazyFrame:
    """An empty frame with the table's full contract schema (for optional tables)."""
    return pl.LazyFrame(schema=spec.schema)


@dataclass(frozen=True)
class Tables:
    """The five contract tables as LazyFrames, cast to the contract's dtypes, with every
    contract column present (optional columns absent from the input are null) and extra
    columns dropped. Built by `features.io.load_tables`; tests may build one directly.
    """

    transactions: pl.LazyFrame
    customers: pl.LazyFrame
    products: pl.LazyFrame
    consents: pl.LazyFrame
    contacts: pl.LazyFrame

    def with_(self, **frames: pl.LazyFrame) -> Tables:
        """A copy with some tables replaced (e.g. filtered to consenting customers)."""
        return replace(self, **frames)

    @classmethod
    def from_frames(cls, **frames: pl.DataFrame | pl.LazyFrame) -> Tables:
        """Build from in-memory frames: casts to the contract, fills missing optional columns."""
        out: dict[str, pl.LazyFrame] = {}
        for name, spec in SPECS.items():
            frame = frames.get(name)
            if frame is None:
                out[name] = empty_frame(spec)
                continue
            lf = frame.lazy()
            have = lf.collect_schema().names()
            out[name] = lf.select(
                pl.col(c.name).cast(c.dtype)
                if c.name in have
                else pl.lit(None, c.dtype).alias(c.name)
                for c in spec.columns
            )
        return cls(**out)
