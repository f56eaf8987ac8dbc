"""The ground truth: each month's probability that a customer opens each product, and the draws.

The monthly logit uses only what a bank could observe before the month (payments, age,
holdings) plus a small latent term; effects are non-linear (thresholds, interactions, decaying
recency of events) so that gradient boosting has something to find that a linear model misses.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from synthbank.calendar import Calendar
from synthbank.events import Events
from synthbank.population import Population

PRODUCTS = ("savings", "insurance", "credit_card", "child_savings")
SAVINGS, INSURANCE, CREDIT_CARD, CHILD_SAVINGS = range(4)
NEVER = 10**6
INITIAL_SHARE = np.array([0.30, 0.10, 0.16, 0.30])
CLOSE_RATE = np.array([0.003, 0.008, 0.004, 0.002])


@dataclass
class Openings:
    """Truth and product holdings of one chunk."""

    p_open: np.ndarray  # (n, M, P) float, NaN where the customer holds the product / is no customer
    opened: np.ndarray  # (n, M, P) bool: opened in that month
    rows: dict[str, np.ndarray]  # products table: cust, product, opened_day, closed_day (-1 = open)


def months_since(event: np.ndarray) -> np.ndarray:
    """For each month m, months since the last event strictly before m (NEVER if none)."""
    n, m = event.shape
    idx = np.where(event, np.arange(m)[None, :], -NEVER)
    last = np.maximum.accumulate(idx, axis=1)
    prev = np.concatenate([np.full((n, 1), -NEVER), last[:, :-1]], axis=1)
    return np.arange(m)[None, :] - prev


def decay(event: np.ndarray, tau: float) -> np.ndarray:
    """1 in the month after an event, then exp(-(k-1)/tau); 0 without a past event."""
    k = months_since(event)
    return np.where(k < NEVER, np.exp(-(np.minimum(k, 1000) - 1) / tau), 0.0)


def recent(event: np.ndarray, months: int) -> np.ndarray:
    """The event happened within the `months` months before each month."""
    return months_since(event) <= months


def static_logits(pop: Population, ev: Events) -> np.ndarray:
    """(n, M, P) logits without the holdings terms (those change during the simulation)."""
    inc = (pop.income + pop.pension)[:, None]
    age = ev.age
    distress = recent(ev.debt, 3)
    trip_d = decay(ev.trip, 2.5)
    big = decay(ev.inflow >= 10_000, 2.0)
    bonus = decay((ev.inflow > 0) & (ev.inflow < 10_000), 1.5)
    trips_12 = np.cumsum(ev.trip, axis=1) - np.where(ev.trip, 1, 0)
    kb = ev.child_benefit > 0
    first_kb_after_birth = kb & (np.arange(kb.shape[1])[None, :] > ev.birth_month[:, None])
    first_kb_after_birth &= ev.birth_month[:, None] >= 0
    newborn = decay(first_kb_after_birth & (np.cumsum(first_kb_after_birth, 1) == 1), 4.0)
    savings = (
        -5.4
        + 2.8 * big
        + 1.1 * bonus
        + 0.7 * (inc > 4500)
        - 0.6 * (inc < 1600)
        - 1.2 * pop.saves_elsewhere[:, None]
        + 0.4 * (age >= 60)
        - 1.5 * distress
    )
    insurance = (
        -5.7
        + 1.6 * trip_d
        + 1.0 * decay(ev.flight, 2.0) * (inc > 3500)
        + 0.6 * (trips_12 >= 3)
        - 2.0 * pop.travel_insured[:, None]
        + 0.3 * (age >= 60)
    )
    credit_card = (
        -5.8
        + 1.4 * decay(ev.trip, 2.0) * (inc > 2500)
        + 0.9 * (inc > 4000)
        - 1.0 * (inc < 1500)
        - 1.2 * (age < 23)
        - 0.8 * distress
    )
    child = -7.5 + 5.0 * newborn + 2.2 * recent(kb, 3) + 0.5 * (inc > 4000)
    logits = np.stack([savings, insurance, credit_card, child], axis=2)
    return logits + pop.latent[:, None, :]


def _initial(rng: np.random.Generator, pop: Population, ev: Events, cal: Calendar) -> np.ndarray:
    """Products held since before the period (bool (n, P))."""
    inc = pop.income + pop.pension
    share = INITIAL_SHARE[None, :] * np.stack(
        [
            np.clip(inc / 2500, 0.5, 2.0),
            np.where(pop.travel_rate > 0, 1.6, 0.3),
            np.clip(inc / 3000, 0.3, 2.0),
            np.where(pop.kids0 > 0, 1.0, 0.0),
        ],
        axis=1,
    )
    eligible = ev.at_start[:, :1] & (ev.age[:, :1] >= 18)
    return eligible & (rng.random(share.shape) < share)


def simulate(rng: np.random.Generator, pop: Population, ev: Events, cal: Calendar) -> Openings:
    """Walk the months: draw openings from p_open, and closures; record truth and holdings."""
    logits = static_logits(pop, ev)
    n, m_count, p_count = logits.shape
    held = _initial(rng, pop, ev, cal)
    opened_day = np.where(held, _before_period(rng, pop, cal, held.shape), -1)
    p_open = np.full(logits.shape, np.nan)
    opened = np.zeros(logits.shape, dtype=bool)
    starts = cal.month_starts.astype(np.int64)
    rows: list[tuple[np.ndarray, ...]] = []
    for m in range(m_count):
        dim = int(cal.days_in_month[m])
        closing = held & (rng.random(held.shape) < CLOSE_RATE[None, :])
        closed_day = starts[m] + rng.integers(0, dim, held.shape)
        c, p = np.nonzero(closing)
        rows.append((c, p, opened_day[c, p], closed_day[c, p]))
        held &= ~closing
        lg = logits[:, m, :].copy()
        lg[:, CREDIT_CARD] += 0.4 * held[:, SAVINGS]
        prob = 1.0 / (1.0 + np.exp(-lg))
        prob = np.where(ev.age[:, m : m + 1] >= 18, prob, 0.0)
        row = ev.at_start[:, m : m + 1] & ~held
        p_open[:, m, :] = np.where(row, prob, np.nan)
        draw = row & (rng.random(held.shape) < prob)
        day = starts[m] + rng.integers(0, dim, held.shape)
        opened[:, m, :] = draw
        opened_day = np.where(draw, day, opened_day)
        held |= draw
    c, p = np.nonzero(held)
    rows.append((c, p, opened_day[c, p], np.full(c.size, -1)))
    keys = ("cust", "product", "opened_day", "closed_day")
    out = {k: np.concatenate([r[i] for r in rows]) for i, k in enumerate(keys)}
    return Openings(p_open=p_open, opened=opened, rows=out)


def _before_period(
    rng: np.random.Generator, pop: Population, cal: Calendar, shape: tuple[int, int]
) -> np.ndarray:
    """An opening day between becoming an adult customer and the period start."""
    lo = np.maximum(pop.since_day, pop.birth_day + int(18 * 365.25))[:, None]
    span = np.maximum(cal.start_day - lo, 1)
    return (lo + (rng.random(shape) * span).astype(np.int64)).astype(np.int64)
