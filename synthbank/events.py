"""Month-by-month life events per customer, as (customers x months) numpy arrays.

These events drive both the transactions (what a bank can observe) and the product openings,
so the openings are explainable from payments.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from synthbank.calendar import YEAR_DAYS, Calendar
from synthbank.population import EMPLOYED, Population

SEASON = np.array([0.6, 0.7, 0.9, 1.0, 1.2, 1.3, 2.3, 2.3, 1.1, 1.0, 0.7, 1.3])
TRIP_COUNTRIES = ("ES", "FR", "IT", "DE", "US", "PT")
TRIP_WEIGHTS = np.array([0.3, 0.2, 0.15, 0.15, 0.08, 0.12])
KB_PER_CHILD = 281.0
BOOKING_LEAD = np.array([0.25, 0.40, 0.35])  # P(flight booked 1, 2, 3 months before the trip)
NONE, BONUS, INHERITANCE, HOUSE_SALE = 0, 1, 2, 3


@dataclass
class Events:
    """Events per customer (rows) and simulated month (columns)."""

    active: np.ndarray  # bool: a customer at some point during the month
    at_start: np.ndarray  # bool: a customer since before the month started
    age: np.ndarray  # float age at the month start
    adult: np.ndarray  # bool: 18 or older at the month start (by the calendar)
    trip: np.ndarray  # bool: travelled abroad this month
    flight: np.ndarray  # bool: the trip was by plane (Schiphol payments in the trip month)
    booking: np.ndarray  # int: flights booked this month (airline payment, 1-3 months ahead)
    country: np.ndarray  # index into TRIP_COUNTRIES
    inflow_kind: np.ndarray  # NONE, BONUS, INHERITANCE, HOUSE_SALE
    inflow: np.ndarray  # EUR
    birth_month: np.ndarray  # (n,) month index of a birth during the period, -1 if none
    child_benefit: np.ndarray  # EUR paid this month (quarterly)
    debt: np.ndarray  # bool: a debt-collection payment this month
    baby: np.ndarray  # purchases at baby shops: from ~4 months before a birth to 8 after


def _trips(rng: np.random.Generator, pop: Population, cal: Calendar, active: np.ndarray):
    """Trips of the period, plus the flights of the 3 months after it (only their bookings,
    which fall inside the period, are kept) so that bookings do not thin out at the end."""
    m = active.shape[1]
    month_of_year = (cal.month_of_year[-1] + np.arange(-m, 3)) % 12  # 0-based, 3 extra months
    rate = np.minimum(pop.travel_rate[:, None] * SEASON[month_of_year][None, :], 0.8)
    ahead = np.concatenate([active, np.repeat(active[:, -1:], 3, axis=1)], axis=1)
    trip = ahead & (rng.random(ahead.shape) < rate)
    flight = trip & (rng.random(ahead.shape) < 0.7)
    country = rng.choice(len(TRIP_COUNTRIES), size=active.shape, p=TRIP_WEIGHTS)
    booking = _bookings(rng, flight, ahead)[:, :m]
    return trip[:, :m], flight[:, :m], booking, country.astype(np.int16)


def _bookings(rng: np.random.Generator, flight: np.ndarray, active: np.ndarray) -> np.ndarray:
    """Flights are booked (an airline payment, MCC 4511) 1-3 months before the trip; bookings
    that would fall before the period (or before the customer joined) are not seen."""
    c, t = np.nonzero(flight)
    b = t - 1 - rng.choice(BOOKING_LEAD.size, size=t.size, p=BOOKING_LEAD)
    keep = b >= 0
    c, b = c[keep], b[keep]
    keep = active[c, b]
    booking = np.zeros(flight.shape, dtype=np.int64)
    np.add.at(booking, (c[keep], b[keep]), 1)
    return booking


def _inflows(rng: np.random.Generator, pop: Population, cal: Calendar, active: np.ndarray):
    shape = active.shape
    u = rng.random(shape)
    december = (cal.month_of_year == 12)[None, :]
    bonus_p = np.where(december, 0.3, 0.008) * (pop.status == EMPLOYED)[:, None]
    bonus_p *= (pop.pick[:, 7] < 0.5)[:, None]  # half of employees ever get one
    inherit_p = np.where((pop.age_end > 30)[:, None], 0.0025, 0.0)
    sale_p = np.where(pop.owner[:, None], 0.0012, 0.0)
    kind = np.full(shape, NONE, dtype=np.int8)
    kind[u < bonus_p] = BONUS
    kind[(u >= bonus_p) & (u < bonus_p + inherit_p)] = INHERITANCE
    kind[(u >= bonus_p + inherit_p) & (u < bonus_p + inherit_p + sale_p)] = HOUSE_SALE
    kind[~active] = NONE
    amount = np.select(
        [kind == BONUS, kind == INHERITANCE, kind == HOUSE_SALE],
        [
            pop.income[:, None] * rng.uniform(0.8, 4.0, shape),
            rng.lognormal(np.log(30000), 0.8, shape),
            rng.lognormal(np.log(140000), 0.5, shape),
        ],
        0.0,
    )
    return kind, np.round(amount, 2)


def _child_benefit(rng: np.random.Generator, pop: Population, cal: Calendar, active: np.ndarray):
    """Births during the period; benefit paid at quarter starts, from the quarter after a birth."""
    age0 = pop.age_end - cal.months / 12
    p = np.where((age0 >= 25) & (age0 < 41), np.where(pop.partner, 0.012, 0.003), 0.0)
    p = np.where(age0 < 44, p, 0.0)
    wait = rng.geometric(np.maximum(p, 1e-12)) - 1
    birth = np.where((p > 0) & (wait < cal.months), wait, -1)
    abs_month = cal.month_starts.astype("datetime64[M]").astype(np.int64)
    quarter = abs_month // 3
    qstart = (abs_month % 3 == 0)[None, :]
    born = (birth[:, None] >= 0) & (quarter[None, :] > quarter[np.maximum(birth, 0)][:, None])
    kids = pop.kids0[:, None] + born
    amount = np.where(qstart & active & (kids > 0), KB_PER_CHILD * kids, 0.0)
    return birth, amount


def make_events(rng: np.random.Generator, pop: Population, cal: Calendar) -> Events:
    """Draw every customer's events for every simulated month."""
    starts = cal.month_starts.astype(np.int64)
    next_starts = starts + cal.days_in_month
    active = pop.since_day[:, None] < next_starts[None, :]
    at_start = pop.since_day[:, None] < starts[None, :]
    age = (starts[None, :] - pop.birth_day[:, None]) / YEAR_DAYS
    trip, flight, booking, country = _trips(rng, pop, cal, active)
    kind, inflow = _inflows(rng, pop, cal, active)
    birth, benefit = _child_benefit(rng, pop, cal, active)
    debt = active & pop.distress[:, None] & (rng.random(active.shape) < 0.8)
    offset = np.arange(cal.months)[None, :] - birth[:, None]
    expecting = (birth[:, None] >= 0) & (offset >= -4) & (offset <= 8) & active
    baby = np.where(expecting, rng.poisson(1.5, active.shape), 0)
    return Events(
        active=active,
        at_start=at_start,
        age=age,
        adult=starts[None, :] >= pop.adult_day[:, None],
        trip=trip,
        flight=flight,
        booking=booking,
        country=country,
        inflow_kind=kind,
        inflow=inflow,
        birth_month=birth,
        child_benefit=benefit,
        debt=debt,
        baby=baby,
    )
