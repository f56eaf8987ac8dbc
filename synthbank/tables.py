"""The small tables of one chunk: customers, products, consents, contacts and the truth."""

from __future__ import annotations

import numpy as np
import polars as pl

from features.schemas import CHANNELS, CONSENTS, CONTACTS, CUSTOMERS, OUTCOMES, PRODUCTS
from synthbank.assemble import customer_ids
from synthbank.calendar import US_PER_DAY, Calendar
from synthbank.events import Events
from synthbank.openings import PRODUCTS as PRODUCT_NAMES
from synthbank.openings import Openings
from synthbank.population import Population

TRUTH_SCHEMA = {
    "customer_id": pl.String(),
    "product": pl.String(),
    "month": pl.Date(),
    "p_open": pl.Float64(),
}
CONTACT_RATE = 0.045
CHANNEL_WEIGHTS = np.array([0.45, 0.2, 0.25, 0.1])


def _cast(frame: pl.DataFrame, schema: dict[str, pl.DataType]) -> pl.DataFrame:
    return frame.select(pl.col(k).cast(v) for k, v in schema.items())


def _dates(days: np.ndarray) -> np.ndarray:
    return days.astype("datetime64[D]")


def customers(pop: Population) -> pl.DataFrame:
    frame = pl.DataFrame(
        {
            "customer_id": customer_ids(pop),
            "birth_date": _dates(pop.birth_day),
            "customer_since": _dates(pop.since_day),
        }
    )
    return _cast(frame, CUSTOMERS.schema)


def products(pop: Population, op: Openings) -> pl.DataFrame:
    r = op.rows
    frame = pl.DataFrame(
        {
            "customer_id": customer_ids(pop).gather(pl.Series(r["cust"])),
            "product": pl.Series(PRODUCT_NAMES).gather(pl.Series(r["product"])),
            "opened_at": _dates(r["opened_day"]),
            "closed_at": pl.Series(_dates(r["closed_day"])).set(
                pl.Series(r["closed_day"] < 0), None
            ),
        }
    )
    return _cast(frame, PRODUCTS.schema).sort("customer_id", "product", "opened_at")


def consents(
    rng: np.random.Generator, pop: Population, cal: Calendar
) -> tuple[pl.DataFrame, np.ndarray]:
    """Opt-out: ~7% objected; channel permissions vary; ~2% of customers have no row.

    Also returns (customers x channels) bool: may be sent payment-data offers on that channel.
    """
    u = rng.random((pop.n, 6))
    stamp = pop.since_day + (u[:, 5] * (cal.end_day - pop.since_day)).astype(np.int64)
    frame = pl.DataFrame(
        {
            "customer_id": customer_ids(pop),
            "payment_data_marketing": u[:, 0] >= 0.07,
            "email": u[:, 1] < 0.85,
            "sms": u[:, 2] < 0.55,
            "post": u[:, 3] < 0.92,
            "phone": u[:, 4] < 0.45,
            "updated_at": (stamp * US_PER_DAY + 43_200_000_000).astype("datetime64[us]"),
        }
    )
    has_row = rng.random(pop.n) >= 0.02
    allowed = frame.select(CHANNELS).to_numpy() & (has_row & (u[:, 0] >= 0.07))[:, None]
    return _cast(frame.filter(pl.Series(has_row)), CONSENTS.schema), allowed


def contacts(
    rng: np.random.Generator,
    pop: Population,
    ev: Events,
    op: Openings,
    cal: Calendar,
    allowed: np.ndarray,
) -> pl.DataFrame:
    """Earlier campaigns: a few % of adult non-holders per month, only on channels they allow
    today (so the history breaks no consent); accepted when they opened the product."""
    n, m_count, p_count = op.p_open.shape
    product = rng.integers(0, p_count, (n, m_count))
    channel = rng.choice(len(CHANNELS), (n, m_count), p=CHANNEL_WEIGHTS)
    held = np.isnan(np.take_along_axis(op.p_open, product[:, :, None], 2)[:, :, 0])
    reachable = np.take_along_axis(allowed, channel, 1)
    hit = ev.at_start & ev.adult & ~held & reachable
    c, m = np.nonzero(hit & (rng.random((n, m_count)) < CONTACT_RATE))
    p = product[c, m]
    later = np.minimum(m + 1, m_count - 1)
    took = op.opened[c, m, p] | op.opened[c, later, p]
    u = rng.random(c.size)
    outcome = np.where(took & (u < 0.9), 0, np.where(u < 0.25, 1, np.where(u < 0.97, 2, 3)))
    day = (rng.random(c.size) * cal.days_in_month[m]).astype(np.int64)
    at = cal.start_us[m] + day * US_PER_DAY + 36_000_000_000
    labels = pl.Series(cal.labels())
    names = pl.Series(PRODUCT_NAMES)
    frame = pl.DataFrame(
        {
            "customer_id": customer_ids(pop).gather(pl.Series(c)),
            "product": names.gather(pl.Series(p)),
            "channel": pl.Series(CHANNELS).gather(pl.Series(channel[c, m])),
            "contacted_at": at.astype("datetime64[us]"),
            "label": labels.gather(pl.Series(m)),
            "outcome": pl.Series([*OUTCOMES, None], dtype=pl.String).gather(pl.Series(outcome)),
        }
    )
    campaign = pl.concat_str([pl.lit("CMP"), "label", "product"], separator="-")
    return _cast(frame.with_columns(campaign_id=campaign), CONTACTS.schema)


def truth(pop: Population, op: Openings, cal: Calendar) -> pl.DataFrame:
    """p_open per customer, month and product; absent where held or not yet a customer."""
    c, m, p = np.nonzero(~np.isnan(op.p_open))
    frame = pl.DataFrame(
        {
            "customer_id": customer_ids(pop).gather(pl.Series(c)),
            "product": pl.Series(PRODUCT_NAMES).gather(pl.Series(p)),
            "month": cal.month_starts[m],
            "p_open": op.p_open[c, m, p],
        }
    )
    return _cast(frame, TRUTH_SCHEMA)
