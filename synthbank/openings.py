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


@dataclass
class Signals:
    """What the bank can observe before each month, as (customers x months) arrays."""

    income: np.ndarray  # monthly income (salary/benefit/pension), constant per customer
    age: np.ndarray
    balance: np.ndarray  # balance at the end of the previous month
    distress: np.ndarray  # a debt-collection payment in the last 3 months
    trips_12: np.ndarray  # trips abroad in the 12 months before the month
    newborn: np.ndarray  # decaying effect of child benefit starting after a birth
    child_benefit: np.ndarray  # child benefit received in the last 3 months
    baby: np.ndarray  # baby-shop purchases in the last 2 months


def signals(pop: Population, ev: Events, balance: np.ndarray) -> Signals:
    """The observable inputs of p_open; month m sees events up to the end of month m-1."""
    kb = ev.child_benefit > 0
    after_birth = kb & (np.arange(kb.shape[1])[None, :] > ev.birth_month[:, None])
    after_birth &= ev.birth_month[:, None] >= 0
    trips = np.concatenate([np.zeros((pop.n, 1)), np.cumsum(ev.trip, axis=1)], axis=1)
    lagged = np.concatenate([np.zeros((pop.n, 12)), trips], axis=1)[:, : trips.shape[1]]
    return Signals(
        income=(pop.income + pop.pension)[:, None],
        age=ev.age,
        balance=np.concatenate([pop.opening[:, None], balance[:, :-1]], axis=1),
        distress=recent(ev.debt, 3),
        trips_12=(trips - lagged)[:, :-1],
        newborn=decay(after_birth & (np.cumsum(after_birth, 1) == 1), 4.0),
        child_benefit=recent(kb, 3),
        baby=recent(ev.baby > 0, 2),
    )


def _savings(s: Signals, pop: Population, ev: Events) -> np.ndarray:
    """A large inflow (decaying over a few months), a bonus, a high balance (which persists
    after an inflow until the money moves); not in distress."""
    inc, bal, elsewhere = s.income, s.balance, pop.saves_elsewhere[:, None]
    return (
        -5.7
        + 2.2 * decay(ev.inflow >= 10_000, 4.0) * (1 - 0.6 * elsewhere)
        + 1.0 * decay((ev.inflow > 0) & (ev.inflow < 10_000), 2.0)
        + 1.6 * (bal > np.maximum(3 * inc, 8000))
        + 1.0 * (bal > 25_000)
        - 1.0 * (bal < 0)
        + 0.8 * (inc > 4500)
        - 0.6 * (inc < 1600)
        - 0.8 * elsewhere
        + 0.4 * (s.age >= 60)
        - 1.5 * s.distress
    )


def _insurance(s: Signals, pop: Population, ev: Events) -> np.ndarray:
    """Recent trips, flights x income, frequent travel, unless already insured elsewhere;
    young adults and seniors."""
    insured = pop.travel_insured[:, None]
    uninsured = 1 - 0.85 * insured
    keen = ((s.age >= 25) & (s.age < 35)) | (s.age >= 65)  # travel matters more at these ages
    return (
        -6.3
        + 1.0 * decay(ev.trip, 5.0) * uninsured * (1 + keen)
        + 1.4 * decay(ev.flight, 5.0) * (s.income > 3500) * uninsured
        + 1.2 * (s.trips_12 >= 2) * uninsured
        + 0.8 * (s.trips_12 >= 4)
        - 0.8 * insured
        + 0.4 * keen
    )


def _credit_card(s: Signals, ev: Events) -> np.ndarray:
    """Recent travel x income, frequent travel, income thresholds, an inverted-U in age."""
    inc, age = s.income, s.age
    return (
        -6.0
        + 1.5 * decay(ev.trip, 5.0) * (inc > 2500)
        + 0.8 * (s.trips_12 >= 2)
        + 1.0 * (inc > 4000)
        - 1.2 * (inc < 1500)
        + 0.7 * ((age >= 23) & (age < 40))
        - 1.2 * (age < 23)
        - 0.6 * (age >= 70)
        - 0.8 * s.distress
    )


def static_logits(pop: Population, ev: Events, balance: np.ndarray) -> np.ndarray:
    """(n, M, P) logits without the holdings terms (those change during the simulation)."""
    s = signals(pop, ev, balance)
    child = -7.2 + 4.5 * s.newborn + 1.5 * s.baby + 1.8 * s.child_benefit + 0.5 * (s.income > 4000)
    logits = np.stack(
        [_savings(s, pop, ev), _insurance(s, pop, ev), _credit_card(s, ev), child], axis=2
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
    logits = static_logits(pop, ev, balance)
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
