"""Small random contract tables for the feature tests (realistic rows from a fixed palette)."""

from __future__ import annotations

from datetime import date, datetime, timedelta

import numpy as np
import polars as pl

from features.schemas import Tables

# (counterparty, mcc, method, description, sign, typical amount, location, country)
PALETTE = [
    ("Philips Nederland B.V.", None, "transfer", "Salaris", 1, 3200.0, None, None),
    ("SVB", None, "transfer", "KINDERBIJSLAG", 1, 290.0, None, None),
    ("SVB", None, "transfer", "AOW", 1, 1400.0, None, None),
    ("UWV", None, "transfer", "WW-uitkering", 1, 1200.0, None, None),
    ("Notariskantoor Van Dijk", None, "transfer", "NALATENSCHAP", 1, 24000.0, None, None),
    ("J. de Vries", None, "transfer", "Tikkie", 1, 25.0, None, None),
    ("Ymere", None, "standing_order", "Huur", -1, 950.0, None, None),
    ("ING Hypotheken", None, "direct_debit", "Hypotheek termijn", -1, 1100.0, None, None),
    ("Vattenfall", None, "direct_debit", "Termijnbedrag energie", -1, 120.0, None, None),
    ("Zilveren Kruis", None, "direct_debit", "Premie zorgverzekering", -1, 140.0, None, None),
    ("Centraal Beheer", None, "direct_debit", "Premie verzekering", -1, 30.0, None, None),
    ("Albert Heijn", 5411, "card", None, -1, 45.0, "Utrecht", "NL"),
    ("Vapiano", 5812, "card", None, -1, 35.0, "Amsterdam", "NL"),
    ("bol.com", 5311, "card", "Online bestelling", -1, 60.0, None, "NL"),
    ("KLM", 4511, "card", None, -1, 400.0, None, "NL"),
    ("HMSHost Schiphol", 5812, "card", None, -1, 15.0, "Schiphol", "NL"),
    ("Mercadona", 5411, "card", None, -1, 40.0, "Malaga", "ES"),
    ("Raisin", None, "transfer", "Inleg", -1, 500.0, None, None),
    ("Geldmaat", 6011, "atm", None, -1, 50.0, "Utrecht", "NL"),
    ("Intrum", None, "transfer", "Betaling vordering", -1, 80.0, None, None),
    ("ING", None, "fee", "Betaalpakket", -1, 3.0, None, None),
    ("HEMA", 5311, "card", None, -1, 20.0, "Utrecht", "NL"),
]
# Rows that reach no feature: special data and the eligibility-only families (debt collection).
SPECIAL_PALETTE = [
    ("Lowell Financial", None, "transfer", "Aanmaning", -1, 60.0, None, None),
    ("Apotheek De Linde", 5912, "card", None, -1, 20.0, "Utrecht", "NL"),
    ("Erasmus MC", 8062, "card", None, -1, 100.0, "Rotterdam", "NL"),
    ("Parochie H. Nicolaas", 8661, "transfer", "Gift", -1, 10.0, None, None),
    ("Holland Casino", 7995, "card", None, -1, 100.0, "Amsterdam", "NL"),
    ("FNV", None, "direct_debit", "Contributie", -1, 20.0, None, None),
    ("VVD", None, "direct_debit", "Contributie", -1, 5.0, None, None),
    ("Pink Velvet Club", 5967, "card", None, -1, 80.0, None, "NL"),
]
COLUMNS = (
    "counterparty_name",
    "mcc",
    "method",
    "description",
    "sign",
    "typical",
    "location",
    "country",
)
START = date(2025, 1, 1)


def transaction_rows(
    rng: np.random.Generator, customers: list[str], n: int, palette: list, days: int, prefix: str
) -> pl.DataFrame:
    """n random rows for the given customers within `days` days from START."""
    pick = rng.integers(0, len(palette), n)
    attrs = {c: [palette[k][j] for k in pick] for j, c in enumerate(COLUMNS)}
    scale = rng.choice([0.5, 1.0, 1.0, 1.5, 3.0], n)
    amount = np.round(np.array(attrs["typical"]) * scale, 2) * np.array(attrs["sign"])
    day = rng.integers(0, days, n)
    secs = rng.integers(0, 86400, n)
    return pl.DataFrame(
        {
            "transaction_id": [f"{prefix}{i:06d}" for i in range(n)],
            "customer_id": rng.choice(customers, n).tolist(),
            "booked_at": [
                datetime.combine(START, datetime.min.time())
                + timedelta(days=int(d), seconds=int(s))
                for d, s in zip(day, secs, strict=True)
            ],
            "amount": amount,
            "method": attrs["method"],
            "counterparty_name": attrs["counterparty_name"],
            "description": attrs["description"],
            "mcc": pl.Series(attrs["mcc"], dtype=pl.Int32),
            "location": attrs["location"],
            "country": attrs["country"],
        }
    )


def with_balances(tx: pl.DataFrame, openings: dict[str, float]) -> pl.DataFrame:
    """Consistent balance_after: opening plus the running sum in (booked_at, id) order."""
    opening = pl.DataFrame({"customer_id": list(openings), "opening": list(openings.values())})
    return (
        tx.sort("customer_id", "booked_at", "transaction_id")
        .join(opening, on="customer_id", how="left")
        .with_columns(
            (
                pl.col("opening").fill_null(0.0) + pl.col("amount").cum_sum().over("customer_id")
            ).alias("balance_after")
        )
        .drop("opening")
    )


def regular_rows(rng: np.random.Generator, customers: list[str], days: int) -> pl.DataFrame:
    """Monthly salaries (with a raise at a random month) and child benefit that starts at a
    random month, so income and life-event features see realistic patterns."""
    rows = []
    for cid in customers:
        salary, raise_at = float(rng.integers(2000, 5000)), int(rng.integers(0, 30))
        has_salary, child_from = rng.random() < 0.7, int(rng.integers(0, 40))
        for m in range(days // 30 + 1):
            day = START + timedelta(days=30 * m + 24)
            if has_salary:
                pay = salary * (1.1 if m >= raise_at else 1.0)
                rows.append((cid, day, pay, "Philips Nederland B.V.", f"SALARIS {day:%Y-%m}"))
            if m >= child_from and m % 3 == 0:
                rows.append((cid, day, 290.0, "Sociale Verzekeringsbank", "KINDERBIJSLAG"))
    frame = pl.DataFrame(
        rows,
        schema=["customer_id", "day", "amount", "counterparty_name", "description"],
        orient="row",
    )
    return frame.with_row_index("i").select(
        pl.format("R{}", pl.col("i")).alias("transaction_id"),
        "customer_id",
        (pl.col("day").cast(pl.Datetime("us")) + pl.duration(hours=8)).alias("booked_at"),
        "amount",
        pl.lit("transfer").alias("method"),
        "counterparty_name",
        "description",
        pl.lit(None, pl.Int32).alias("mcc"),
        pl.lit(None, pl.String).alias("location"),
        pl.lit(None, pl.String).alias("country"),
    )


def make_frames(
    seed: int, n_customers: int = 12, n_rows: int = 600, days: int = 700
) -> tuple[dict[str, pl.DataFrame], dict[str, float]]:
    """Random frames (customers, products, transactions with some special rows) and the
    opening balance of every customer, so tests can add rows with consistent balances."""
    rng = np.random.default_rng(seed)
    ids = [f"C{i:04d}" for i in range(n_customers)]
    tx = pl.concat(
        [
            transaction_rows(rng, ids, n_rows, PALETTE, days, "T"),
            transaction_rows(rng, ids, n_rows // 10, SPECIAL_PALETTE, days, "S"),
            regular_rows(rng, ids, days),
        ]
    )
    openings = {c: float(rng.integers(-500, 3000)) for c in ids}
    customers = pl.DataFrame(
        {
            "customer_id": ids,
            "birth_date": [
                date(1950, 1, 1) + timedelta(days=int(d))
                for d in rng.integers(0, 25000, n_customers)
            ],
            "customer_since": [
                START + timedelta(days=int(d)) for d in rng.integers(-400, 500, n_customers)
            ],
        }
    )
    n_products = max(3, n_customers + n_customers // 4)
    products = pl.DataFrame(
        {
            "customer_id": rng.choice(ids, n_products).tolist(),
            "product": rng.choice(
                ["savings", "insurance", "credit_card", "child_savings"], n_products
            ).tolist(),
            "opened_at": [
                START + timedelta(days=int(d)) for d in rng.integers(-100, 700, n_products)
            ],
            "closed_at": [
                None if rng.random() < 0.6 else START + timedelta(days=int(d))
                for d in rng.integers(100, 800, n_products)
            ],
        },
        schema_overrides={"closed_at": pl.Date},
    ).unique(["customer_id", "product", "opened_at"], keep="first", maintain_order=True)
    frames = {
        "transactions": with_balances(tx, openings),
        "customers": customers,
        "products": products,
        "consents": consents(ids),
    }
    return frames, openings


def consents(ids: list[str], objectors: tuple[str, ...] = ()) -> pl.DataFrame:
    """A consent row for every id (features are built only for customers who may be
    profiled); `objectors` object to payment-data marketing."""
    return pl.DataFrame(
        {
            "customer_id": list(ids),
            "payment_data_marketing": [i not in objectors for i in ids],
            **{channel: [True] * len(ids) for channel in ("email", "sms", "post", "phone")},
        }
    )


def make_tables(seed: int, n_customers: int = 12, n_rows: int = 600, days: int = 700) -> Tables:
    """Random contract tables (see `make_frames`)."""
    frames, _ = make_frames(seed, n_customers, n_rows, days)
    return Tables.from_frames(**frames)
