"""Customers of one chunk: demographics, income, household and latent habits as numpy arrays.

Everything here is fixed per customer for the whole period; what changes month by month lives
in `synthbank.events`.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from synthbank.calendar import YEAR_DAYS as YEAR
from synthbank.calendar import Calendar

MINOR, EMPLOYED, UNEMPLOYED, RETIRED, STUDENT = 0, 1, 2, 3, 4


@dataclass
class Population:
    """One row per customer of a chunk (arrays of equal length)."""

    ids: np.ndarray  # global customer number
    birth_day: np.ndarray  # days since epoch
    age_end: np.ndarray  # age in years at `end` (float)
    since_day: np.ndarray  # customer_since, days since epoch
    status: np.ndarray
    income: np.ndarray  # monthly net income from work/benefit (EUR)
    pension: np.ndarray  # monthly pension-fund income of retirees
    partner: np.ndarray
    kids0: np.ndarray  # children under 18 at the start of the period
    owner: np.ndarray
    housing: np.ndarray  # monthly rent or mortgage, 0 when living with parents
    travel_rate: np.ndarray  # trips per month outside the season
    distress: np.ndarray
    saves_elsewhere: np.ndarray
    travel_insured: np.ndarray
    spend_level: np.ndarray
    opening: np.ndarray  # opening balance (EUR)
    pick: np.ndarray  # (n, 8) uniform draws used to pick suppliers, employer, city, ...
    habits: np.ndarray  # (n, 8) bool: union, religious, political, gambler, adult, other ins.
    latent: np.ndarray  # (n, 4) unobserved product affinity

    @property
    def n(self) -> int:
        return len(self.ids)

    @property
    def adult_day(self) -> np.ndarray:
        """The 18th birthday by the calendar (days since the epoch; a 29th-31st rolls over
        into the next month, i.e. never early)."""
        birth = self.birth_day.astype("datetime64[D]")
        month = birth.astype("datetime64[M]")
        day_of_month = birth - month.astype("datetime64[D]")
        return ((month + 18 * 12).astype("datetime64[D]") + day_of_month).astype(np.int64)


def _ages(rng: np.random.Generator, n: int) -> np.ndarray:
    """Age mix: ~4% minors 12-17, ~27% retirees 67+, the rest working age."""
    u = rng.random(n)
    minor = 12 + 6 * rng.random(n)
    retired = np.minimum(67 + rng.exponential(8.0, n), 99)
    working = 18 + 49 * rng.beta(1.3, 1.4, n)
    return np.where(u < 0.04, minor, np.where(u < 0.31, retired, working))


def _income(rng: np.random.Generator, age: np.ndarray, status: np.ndarray) -> np.ndarray:
    base = rng.lognormal(np.log(2700), 0.42, age.size)
    base *= np.clip(0.55 + (age - 18) / 25, 0.55, 1.25)  # income grows with experience
    income = np.where(status == EMPLOYED, base, 0.0)
    income = np.where(status == UNEMPLOYED, np.minimum(0.7 * base, 2600), income)
    income = np.where(status == RETIRED, 1480.0, income)  # AOW for a single person
    income = np.where(status == STUDENT, 400 + 300 * rng.random(age.size), income)
    return np.round(np.clip(income, 0, 16000), 2)


def _status(rng: np.random.Generator, age: np.ndarray) -> np.ndarray:
    u = rng.random(age.size)
    status = np.full(age.size, EMPLOYED, dtype=np.int8)
    status[(age < 23) & (u < 0.45)] = STUDENT
    status[(age >= 23) & (age < 67) & (u < 0.05)] = UNEMPLOYED
    status[age >= 67] = RETIRED
    status[age < 18] = MINOR
    return status


def _since(rng: np.random.Generator, age: np.ndarray, cal: Calendar) -> np.ndarray:
    """Relationship start: spread over decades; ~8% join during the period; minors later."""
    end = cal.end_day
    years_possible = np.clip(age - 18, 0.2, 35)
    since = end - (rng.random(age.size) * years_possible * YEAR + cal.months * 30.5)
    joins = rng.random(age.size) < 0.08
    since = np.where(joins, cal.start_day + rng.random(age.size) * (end - cal.start_day - 1), since)
    minor_since = end - rng.random(age.size) * (age - 0.5) * YEAR
    since = np.where(age < 18, np.maximum(minor_since, since), since)
    return np.minimum(since.astype(np.int64), end - 1)


def _household(rng: np.random.Generator, age: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    n = age.size
    partner = (age >= 23) & (rng.random(n) < 0.6)
    parent_age = (age >= 25) & (age < 58)
    kids0 = np.where(parent_age & (rng.random(n) < 0.45), rng.integers(1, 4, n), 0)
    return partner, kids0.astype(np.int64)


def _housing(
    rng: np.random.Generator, age: np.ndarray, total: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """Owner or tenant, and the monthly mortgage or rent (0 for young people living at home)."""
    n = age.size
    owner = (age >= 25) & (rng.random(n) < np.clip(0.15 + total / 6000, 0, 0.85))
    at_home = (age < 18) | ((age < 24) & (rng.random(n) < 0.6))
    housing = np.where(owner, np.clip(0.27 * total, 550, 2600), np.clip(0.32 * total, 420, 1400))
    return owner, np.where(at_home, 0.0, np.round(housing * (0.85 + 0.3 * rng.random(n)), 2))


def _budget(
    rng: np.random.Generator,
    total: np.ndarray,
    housing: np.ndarray,
    adult: np.ndarray,
    distress: np.ndarray,
) -> tuple[np.ndarray, np.ndarray]:
    """Monthly discretionary spending and opening balance: most customers spend less than they
    earn after fixed costs (balances grow); customers in distress spend more (balances sink)."""
    n = total.size
    fixed = housing + adult * (230 + 190 * (housing > 0))  # utilities, health premium, phone
    disposable = np.maximum(total - fixed, 150)
    spend = np.where(distress, 1.15, 0.55 + 0.3 * rng.random(n)) * disposable
    opening = np.where(
        distress, -rng.random(n) * 600, rng.lognormal(np.log(2.0 * total + 500), 0.6)
    )
    return spend, np.round(np.where(adult, opening, rng.random(n) * 200), 2)


def make_population(rng: np.random.Generator, first_id: int, n: int, cal: Calendar) -> Population:
    """Draw `n` customers numbered from `first_id`."""
    age = _ages(rng, n)
    status = _status(rng, age)
    income = _income(rng, age, status)
    partner, kids0 = _household(rng, age)
    income = np.where((status == RETIRED) & partner, 1015.0, income)  # AOW for a couple
    pension = np.where(
        (status == RETIRED) & (rng.random(n) < 0.8), rng.lognormal(np.log(700), 0.7, n), 0.0
    )
    total = income + pension
    adult = age >= 18
    owner, housing = _housing(rng, age, total)
    traveller = rng.random(n) < np.clip(0.45 + total / 8000, 0, 0.9)
    travel_rate = np.where(traveller & adult, rng.lognormal(np.log(0.07), 0.6, n), 0.0)
    distress = adult & (rng.random(n) < np.where(total < 2000, 0.09, 0.025))
    habits = rng.random((n, 8)) < np.array([0.15, 0.07, 0.02, 0.04, 0.005, 0.3, 0.0, 0.0])
    habits &= adult[:, None]
    habits[:, 3] |= distress & (rng.random(n) < 0.3)  # gamblers over-represented in distress
    spend, opening = _budget(rng, total, housing, adult, distress)
    return Population(
        ids=np.arange(first_id, first_id + n, dtype=np.int64),
        birth_day=(cal.end_day - age * YEAR).astype(np.int64),
        age_end=age,
        since_day=_since(rng, age, cal),
        status=status,
        income=income,
        pension=np.round(pension, 2),
        partner=partner,
        kids0=kids0,
        owner=owner,
        housing=housing,
        travel_rate=travel_rate,
        distress=distress,
        saves_elsewhere=adult & (rng.random(n) < np.clip(total / 20000, 0.03, 0.3)),
        travel_insured=traveller & (rng.random(n) < 0.15),
        spend_level=spend,
        opening=opening,
        pick=rng.random((n, 8)),
        habits=habits,
        latent=rng.normal(0.0, 0.25, (n, 4)),
    )
