"""The ground truth: each month's probability that a customer opens each product, and the draws.

The monthly logit uses what a bank could observe before the month (payments, age, holdings; see
`synthbank.signals`: lagged reactions to events and slowly changing state) plus a modest latent
term. Effects are non-linear (thresholds, saturation, interactions of travel with income, age
and season) so that gradient boosting has something to find that a linear model misses.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from synthbank.calendar import Calendar
from synthbank.events import Events
from synthbank.population import Population
from synthbank.signals import Signals, signals

PRODUCTS = ("savings", "insurance", "credit_card", "child_savings")
SAVINGS, INSURANCE, CREDIT_CARD, CHILD_SAVINGS = range(4)
INITIAL_SHARE = np.array([0.30, 0.10, 0.16, 0.30])
CLOSE_RATE = np.array([0.003, 0.008, 0.004, 0.002])


@dataclass
class Openings:
    """Truth and product holdings of one chunk."""

    p_open: np.ndarray  # (n, M, P) float, NaN where the customer holds the product / is no customer
    opened: np.ndarray  # (n, M, P) bool: opened in that month
    rows: dict[str, np.ndarray]  # products table: cust, product, opened_day, closed_day (-1 = open)


def _savings(s: Signals, pop: Population) -> np.ndarray:
    """A large inflow (reaction peaks 2 months later, decays over ~5), idle cash that stays on
    the current account (thresholds relative to income), a bonus for higher earners; seniors
    with idle cash; not in distress, less when already saving elsewhere."""
    inc, idle, elsewhere = s.income, s.idle, pop.saves_elsewhere[:, None]
    return (
        -5.8
        + 2.8 * s.large_inflow * (1 - 0.6 * elsewhere)
        + 1.2 * s.small_inflow * (inc > 3000)
        + 1.5 * (idle > np.maximum(3 * inc, 8000))
        + 0.9 * (idle > 25_000)
        + 0.6 * (idle > 15_000) * (s.age >= 60)
        - 1.0 * (s.balance < 0)
        + 0.8 * (inc > 4500)
        - 0.6 * (inc < 1600)
        - 0.8 * elsewhere
        + 0.3 * (s.age >= 60)
        - 1.5 * s.distress
    )


def _insurance(s: Signals, pop: Population, summer: np.ndarray) -> np.ndarray:
    """Travellers who fly (flights x income; 2-4 flights a year, while the most frequent flyers
    mostly have annual cover already), more at 25-34 and 65+; a flight booking lifts it until
    about the trip (more for first-time travellers); the holiday season; less when already
    paying a travel insurer elsewhere."""
    insured = pop.travel_insured[:, None]
    uninsured = 1 - 0.5 * insured
    keen = ((s.age >= 25) & (s.age < 35)) | (s.age >= 65)  # travel matters more at these ages
    flyer = s.flights_12 >= 1
    return (
        -6.5
        + 1.6 * s.booked * uninsured * (1 + 0.6 * s.novice)
        + 1.4 * flyer * (s.income > 3000) * uninsured
        + 0.7 * ((s.flights_12 >= 2) & (s.flights_12 < 5)) * uninsured
        + 1.2 * keen * flyer
        + 0.3 * keen
        - 0.8 * (s.age < 23)
        + 0.4 * summer * (s.trips_12 >= 1)
        - 0.4 * insured
        - 0.5 * (s.income < 1500)
    )


def _credit_card(s: Signals) -> np.ndarray:
    """Travel (bookings and trips) x income, regular travel, income thresholds, an inverted-U
    in age, prime-age earners; not in distress."""
    inc, age = s.income, s.age
    prime = (age >= 23) & (age < 40)
    return (
        -6.1
        + 1.4 * s.travelled * (inc > 2500)
        + 0.8 * s.booked * (age < 50)
        + 0.7 * (s.trips_12 >= 2)
        + 0.9 * (inc > 4000)
        - 1.2 * (inc < 1500)
        + 0.4 * prime
        + 1.1 * prime * (inc > 3000)
        - 1.5 * (age < 23)
        - 0.9 * (age >= 70)
        - 0.8 * s.distress
    )


def _child_savings(s: Signals) -> np.ndarray:
    """Mostly after the first child: the first child benefit (SVB, from the quarter after a
    birth) lifts it for months; baby-shop purchases lead the birth; families with a good income."""
    newborn = s.newborn * np.where(s.first_child, 4.8, 2.5)
    return -7.2 + newborn + 1.0 * s.baby + 1.8 * s.child_benefit + 0.5 * (s.income > 4000)


def static_logits(pop: Population, ev: Events, balance: np.ndarray, cal: Calendar) -> np.ndarray:
    """(n, M, P) logits without the holdings terms (those change during the simulation)."""
    s = signals(pop, ev, balance)
    summer = np.isin(cal.month_of_year, (5, 6, 7, 8))[None, :]
    child = _child_savings(s)
    logits = np.stack(
        [_savings(s, pop), _insurance(s, pop, summer), _credit_card(s), child], axis=2
    )
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
    eligible = ev.at_start[:, :1] & (pop.adult_day < cal.start_day)[:, None]
    return eligible & (rng.random(share.shape) < share)


def simulate(
    rng: np.random.Generator, pop: Population, ev: Events, cal: Calendar, balance: np.ndarray
) -> Openings:
    """Walk the months: draw openings from p_open, and closures; record truth and holdings."""
    logits = static_logits(pop, ev, balance, cal)
    m_count = logits.shape[1]
    held = _initial(rng, pop, ev, cal)
    opened_day = np.where(held, _before_period(rng, pop, cal, held.shape), -1)
    p_open = np.full(logits.shape, np.nan)
    opened = np.zeros(logits.shape, dtype=bool)
    starts = cal.month_starts.astype(np.int64)
    rows: list[tuple[np.ndarray, ...]] = []
    for m in range(m_count):
        dim = int(cal.days_in_month[m])
        prob = _month_prob(logits[:, m, :], held, ev.adult[:, m])
        row = ev.at_start[:, m : m + 1] & ~held  # not held at the start of the month
        p_open[:, m, :] = np.where(row, prob, np.nan)
        draw = row & (rng.random(held.shape) < prob)
        closing = held & (rng.random(held.shape) < CLOSE_RATE[None, :])
        c, p = np.nonzero(closing)
        rows.append((c, p, opened_day[c, p], starts[m] + rng.integers(0, dim, c.size)))
        opened[:, m, :] = draw
        opened_day = np.where(draw, starts[m] + rng.integers(0, dim, held.shape), opened_day)
        held = (held & ~closing) | draw  # a closed product can be reopened from next month
    c, p = np.nonzero(held)
    rows.append((c, p, opened_day[c, p], np.full(c.size, -1)))
    keys = ("cust", "product", "opened_day", "closed_day")
    out = {k: np.concatenate([r[i] for r in rows]) for i, k in enumerate(keys)}
    return Openings(p_open=p_open, opened=opened, rows=out)


def _month_prob(logits: np.ndarray, held: np.ndarray, adult: np.ndarray) -> np.ndarray:
    """This month's p_open: adds the holdings terms; zero for minors."""
    lg = logits.copy()
    lg[:, CREDIT_CARD] += 0.4 * held[:, SAVINGS]
    return np.where(adult[:, None], 1.0 / (1.0 + np.exp(-lg)), 0.0)


def _before_period(
    rng: np.random.Generator, pop: Population, cal: Calendar, shape: tuple[int, int]
) -> np.ndarray:
    """An opening day between becoming an adult customer and the period start."""
    lo = np.maximum(pop.since_day, pop.adult_day)[:, None]
    span = np.maximum(cal.start_day - lo, 1)
    return (lo + (rng.random(shape) * span).astype(np.int64)).astype(np.int64)
