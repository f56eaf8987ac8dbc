"""Bank profiles: the Dutch default, and a `foreign` bank that differs the way another bank's
export does (for tests of the any-bank defaults).

`foreign`: money in GBP (amounts x 0.85), no `mcc`, `location` or `country` columns, English
descriptions, products `deposit`, `travel_insurance`, `credit_card` and `loan` (the Dutch
savings, insurance, credit_card and child_savings processes under other names), timestamps
with a time zone (UTC instants of London local time), a short history (15 months) ending
2025-07-01, and 3,000 customers. The behaviour underneath is the Dutch simulation, so the
truth file still gives the oracle.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date

import polars as pl
import pyarrow as pa

from features.errors import ConfigError

DUTCH_TO_ENGLISH = {
    "Abonnement": "Subscription",
    "SALARIS": "SALARY",
    "Contributie": "Membership fee",
    "Betaalpakket": "Account fee",
    "Premie zorgverzekering": "Health insurance premium",
    "Hypotheek termijn": "Mortgage payment",
    "Premie verzekering": "Insurance premium",
    "Termijnbedrag energie": "Energy bill",
    "Waterrekening": "Water bill",
    "Tikkie": "Payment request",
    "Huur": "Rent",
    "AOW": "STATE PENSION",
    "PENSIOEN": "PENSION",
    "WW-uitkering": "Unemployment benefit",
    "KINDERBIJSLAG": "CHILD BENEFIT",
    "Premie reisverzekering": "Travel insurance premium",
    "Inleg": "Deposit",
    "BONUS": "BONUS",
    "Betaling vordering": "Debt collection payment",
    "Zakgeld": "Pocket money",
    "Gift": "Donation",
    "NALATENSCHAP": "INHERITANCE",
    "VERKOOP WONING": "HOUSE SALE",
}


@dataclass(frozen=True)
class Profile:
    """How a profile turns the simulated Dutch bank into its own export."""

    name: str
    currency: str = "EUR"
    fx: float = 1.0
    drop_columns: tuple[str, ...] = ()
    products: dict[str, str] = field(default_factory=dict)
    translate: dict[str, str] = field(default_factory=dict)
    timezone: str | None = None
    """When set, `booked_at` is written as UTC instants of local time in this zone."""
    customers: int = 10_000
    months: int = 24
    end: date = date(2026, 11, 1)

    def transactions(self, table: pa.Table) -> pa.Table:
        """The profile's transactions table from the simulated one."""
        if self.name == "dutch":
            return table
        frame = pl.from_arrow(table)
        assert isinstance(frame, pl.DataFrame)
        money = [pl.col(c).mul(self.fx).round(2) for c in ("amount", "balance_after")]
        desc = pl.col("description").cast(pl.String)
        for dutch, english in self.translate.items():
            desc = desc.str.replace(dutch, english, literal=True)
        frame = frame.with_columns(*money, desc.alias("description"))
        if self.timezone is not None:
            local = pl.col("booked_at").dt.replace_time_zone(
                self.timezone, ambiguous="earliest", non_existent="null"
            )
            frame = frame.with_columns(local.dt.convert_time_zone("UTC"))
            frame = frame.filter(pl.col("booked_at").is_not_null())  # skipped DST hour
        frame = frame.filter(pl.col("amount") != 0)
        return frame.drop(*self.drop_columns).to_arrow()

    def small(self, name: str, frame: pl.DataFrame) -> pl.DataFrame:
        """The profile's customers, products, consents, contacts or truth table."""
        if self.products and "product" in frame.columns:
            return frame.with_columns(pl.col("product").replace(self.products))
        return frame


PROFILES = {
    "dutch": Profile("dutch"),
    "foreign": Profile(
        "foreign",
        currency="GBP",
        fx=0.85,
        drop_columns=("mcc", "location", "country"),
        products={
            "savings": "deposit",
            "insurance": "travel_insurance",
            "credit_card": "credit_card",
            "child_savings": "loan",
        },
        translate=DUTCH_TO_ENGLISH,
        timezone="Europe/London",
        customers=3_000,
        months=15,
        end=date(2025, 7, 1),
    ),
}


def get_profile(name: str) -> Profile:
    """The named profile; an unknown name is an error naming the option and the choices."""
    if name not in PROFILES:
        raise ConfigError(f"--profile {name!r} is not a profile; choose one of {sorted(PROFILES)}")
    return PROFILES[name]
