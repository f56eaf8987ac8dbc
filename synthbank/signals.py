"""What the bank can observe before each month: the inputs of the opening probabilities.

Customers react to an event with a lag (they take a few weeks to decide) and then for months:
an event in month m lifts month m+1 only a little and peaks from month m+2, decaying slowly.
State (trips over the past year, idle cash, income, age) is lagged as well, so that the
probability in the months after a snapshot depends mostly on what was visible before it.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from synthbank.events import Events
from synthbank.population import Population

NEVER = 10**6


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


def response(events: np.ndarray, tau: float, first: float = 0.25) -> np.ndarray:
    """Summed lagged reaction to events: an event in month m adds `first` in month m+1, then 1
    in month m+2 decaying by exp(-1/tau) per month; at most 1 (more events do not add up)."""
    e = events.astype(np.float64)
    out = np.zeros_like(e)
    slow = np.zeros(e.shape[0])
    keep = np.exp(-1.0 / tau)
    for m in range(2, e.shape[1]):
        slow = e[:, m - 2] + keep * slow
        out[:, m] = slow
    out[:, 1:] += first * e[:, :-1]
    return np.minimum(out, 1.0)


def _lag(x: np.ndarray, k: int, fill: np.ndarray | float) -> np.ndarray:
    """x shifted right by k months (month m sees x[m-k]), `fill` (per customer) before."""
    k = min(k, x.shape[1])
    head = np.broadcast_to(np.asarray(fill, dtype=np.float64).reshape(-1, 1), (x.shape[0], k))
    return np.concatenate([head, x[:, : x.shape[1] - k]], axis=1)


def _window_count(event: np.ndarray, lag: int, width: int) -> np.ndarray:
    """Events in months m-lag-width+1 .. m-lag."""
    total = np.concatenate([np.zeros((event.shape[0], 1)), np.cumsum(event, axis=1)], axis=1)
    upto = total[:, :-1]  # events strictly before m
    return _lag(upto, lag - 1, 0.0) - _lag(upto, lag - 1 + width, 0.0)


@dataclass
class Signals:
    """Observable inputs of p_open, as (customers x months) arrays (income: one column)."""

    income: np.ndarray  # monthly income (salary/benefit/pension), constant per customer
    age: np.ndarray
    balance: np.ndarray  # balance at the end of the previous month
    idle: np.ndarray  # the lower of the last two month-end balances: cash that stays put
    distress: np.ndarray  # a debt-collection payment in the last 3 months
    trips_12: np.ndarray  # trips abroad in the 12 months up to two months ago
    flights_12: np.ndarray  # flights booked in the 12 months up to two months ago
    novice: np.ndarray  # no trip abroad in the 12 months before the month
    booked: np.ndarray  # lagged reaction to flight bookings (airline payments)
    travelled: np.ndarray  # lagged reaction to trips abroad
    large_inflow: np.ndarray  # lagged reaction to inflows >= EUR 10k
    small_inflow: np.ndarray  # lagged reaction to bonuses and smaller one-off inflows
    newborn: np.ndarray  # decaying effect of child benefit starting after a birth
    first_child: np.ndarray  # (n, 1) the birth is of the first child (no benefit before)
    child_benefit: np.ndarray  # child benefit received in the last 3 months
    baby: np.ndarray  # baby-shop purchases in the last 2 months


def signals(pop: Population, ev: Events, balance: np.ndarray) -> Signals:
    """Month m sees events up to the end of month m-1 (most with a longer lag)."""
    kb = ev.child_benefit > 0
    after_birth = kb & (np.arange(kb.shape[1])[None, :] > ev.birth_month[:, None])
    after_birth &= ev.birth_month[:, None] >= 0
    previous = _lag(balance, 1, pop.opening)
    return Signals(
        income=(pop.income + pop.pension)[:, None],
        age=ev.age,
        balance=previous,
        idle=np.minimum(previous, _lag(balance, 2, pop.opening)),
        distress=recent(ev.debt, 3),
        trips_12=_window_count(ev.trip, 3, 12),
        flights_12=_window_count(ev.booking, 3, 12),
        novice=_window_count(ev.trip, 1, 12) == 0,
        booked=response(ev.booking, 3.0, first=0.1),
        travelled=response(ev.trip, 5.0),
        large_inflow=response(ev.inflow >= 10_000, 5.0),
        small_inflow=response((ev.inflow > 0) & (ev.inflow < 10_000), 2.0),
        newborn=decay(after_birth & (np.cumsum(after_birth, 1) == 1), 4.0),
        first_child=(pop.kids0 == 0)[:, None],
        child_benefit=recent(kb, 3),
        baby=recent(ev.baby > 0, 2),
    )
