"""Building blocks for transaction rows: a `Block` of coded columns and vectorised helpers.

Each transaction kind (salary, groceries, ...) turns a (customers x months) count matrix into a
Block; `synthbank.assemble` concatenates, sorts and decodes them.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from features.schemas import METHODS
from synthbank.calendar import US_PER_DAY, Calendar
from synthbank.events import Events
from synthbank.population import Population
from synthbank.vocab import Vocabs

METHOD = {name: i for i, name in enumerate(METHODS)}
US_PER_HOUR = US_PER_DAY // 24


@dataclass
class Block:
    """Coded columns of some transactions (codes index the run's vocabularies; 0 = null)."""

    cust: np.ndarray
    t: np.ndarray  # microseconds since the epoch
    cents: np.ndarray  # signed amount in cents, never zero
    method: np.ndarray
    cp: np.ndarray  # int16 codes keep the per-chunk arrays small
    desc: np.ndarray
    mcc: np.ndarray  # 0 = null
    loc: np.ndarray
    country: np.ndarray


@dataclass
class Ctx:
    """Everything a transaction kind needs to draw its rows for one chunk."""

    rng: np.random.Generator
    pop: Population
    ev: Events
    cal: Calendar
    vocabs: Vocabs

    def cp(self, names: tuple[str, ...]) -> np.ndarray:
        return np.array(self.vocabs.counterparty.codes(names), dtype=np.int32)

    def merchants(self, pairs: tuple[tuple[str, int], ...]) -> tuple[np.ndarray, np.ndarray]:
        names = tuple(p[0] for p in pairs)
        return self.cp(names), np.array([p[1] for p in pairs], dtype=np.int32)

    def desc(self, text: str) -> int:
        return self.vocabs.description.code(text)


def expand(counts: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Customer and month index of every row, given a (customers x months) count matrix."""
    flat = counts.ravel().astype(np.int64)
    idx = np.repeat(np.arange(flat.size), flat)
    months = counts.shape[1]
    return idx // months, idx % months


def when(
    ctx: Ctx,
    m: np.ndarray,
    day: int | np.ndarray | None = None,
    hours: tuple[float, float] = (7.0, 22.0),
) -> np.ndarray:
    """Booking moments in month `m`: a fixed day of the month (0-based) or a random one."""
    dim = ctx.cal.days_in_month[m]
    random_day = day is None
    d = (ctx.rng.random(m.size) * dim).astype(np.int64) if random_day else np.minimum(day, dim - 1)
    span = (hours[1] - hours[0]) * US_PER_HOUR
    tod = int(hours[0] * US_PER_HOUR) + (ctx.rng.random(m.size) * span).astype(np.int64)
    tod -= tod % 1_000_000  # whole seconds
    return ctx.cal.start_us[m] + d * US_PER_DAY + tod


def block(
    c: np.ndarray,
    t: np.ndarray,
    amount: np.ndarray | float,
    method: str,
    cp: np.ndarray | int,
    desc: np.ndarray | int = 0,
    mcc: np.ndarray | int = 0,
    loc: np.ndarray | int = 0,
    country: np.ndarray | int = 0,
) -> Block:
    """A Block from per-row arrays or scalars; amounts in EUR, rounded to non-zero cents."""
    n = c.size
    cents = np.round(np.broadcast_to(np.asarray(amount, dtype=np.float64), (n,)) * 100)
    cents = np.where(cents == 0, np.where(np.signbit(cents), -1, 1), cents).astype(np.int64)

    def full(x: np.ndarray | int, dtype: type) -> np.ndarray:
        return np.broadcast_to(np.asarray(x, dtype=dtype), (n,))

    return Block(
        cust=c.astype(np.int32),
        t=t,
        cents=cents,
        method=full(METHOD[method], np.int8),
        cp=full(cp, np.int16),
        desc=full(desc, np.int16),
        mcc=full(mcc, np.int16),
        loc=full(loc, np.int16),
        country=full(country, np.int16),
    )


def pick(ctx: Ctx, c: np.ndarray, options: np.ndarray, column: int, loyal: float) -> np.ndarray:
    """Choose among `options`: the customer's favourite (fixed by `pop.pick[:, column]`) with
    probability `loyal`, otherwise a random one."""
    k = options.size
    favourite = (ctx.pop.pick[c, column] * k).astype(np.int64)
    other = ctx.rng.integers(0, k, c.size)
    return options[np.where(ctx.rng.random(c.size) < loyal, favourite, other)]


def lognormal_amount(ctx: Ctx, mean: np.ndarray, sigma: float = 0.5) -> np.ndarray:
    """Positive amounts with the given mean."""
    return mean * ctx.rng.lognormal(-sigma * sigma / 2, sigma, mean.size)


def poisson(ctx: Ctx, rate: np.ndarray | float) -> np.ndarray:
    """(customers x months) counts, zero in months the customer was not a customer."""
    lam = np.broadcast_to(np.asarray(rate, dtype=np.float64), ctx.ev.active.shape)
    return np.where(ctx.ev.active, ctx.rng.poisson(lam), 0)
