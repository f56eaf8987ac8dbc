"""Card and ATM spending: everyday shopping, special-category payments and travel."""

from __future__ import annotations

import numpy as np

from synthbank import vocab as V
from synthbank.events import TRIP_COUNTRIES
from synthbank.rows import Block, Ctx, block, expand, lognormal_amount, pick, poisson, when

# (merchants, share of the spending budget, rows per month, loyalty, pick column)
EVERYDAY = (
    (V.GROCERIES, 0.45, 6.0, 0.7, 1),
    (V.SHOPS, 0.20, 2.2, 0.2, 2),
    (V.RESTAURANTS, 0.12, 2.2, 0.3, 3),
    (V.ONLINE, 0.13, 1.5, 0.5, 4),
)
# (merchant name, mcc, habit column or None for every adult, rows per month, mean EUR)
SPECIAL = (
    ("Apotheek De Linde", 5912, None, 0.3, 15.0),
    ("Erasmus MC", 8062, None, 0.04, 120.0),
    ("Huisartsenpraktijk Centrum", 8011, None, 0.06, 35.0),
    (V.PARISH, 8661, 1, 0.3, 10.0),
    ("D66", 8651, 2, 0.15, 40.0),
    ("Holland Casino", 7995, 3, 1.5, 30.0),
    ("Toto", 7995, 3, 2.0, 12.0),
    ("Pink Velvet Club", 5967, 4, 0.5, 45.0),
)


def _home(ctx: Ctx, c: np.ndarray) -> np.ndarray:
    cities = np.array(ctx.vocabs.location.codes(V.CITIES), dtype=np.int32)
    return cities[(ctx.pop.pick[c, 0] * cities.size).astype(np.int64)]


def everyday(ctx: Ctx) -> list[Block]:
    """Groceries, shops, restaurants, online shopping and cash, scaled to the spending budget."""
    pop, out = ctx.pop, []
    nl = ctx.vocabs.country.code("NL")
    young = np.where(pop.age_end < 18, 0.5, 1.0)[:, None]
    for merchants, share, rate, loyal, column in EVERYDAY:
        c, m = expand(poisson(ctx, rate * young))
        cps, mccs = ctx.merchants(merchants)
        i = pick(ctx, c, np.arange(cps.size), column, loyal)
        amount = -lognormal_amount(ctx, share * pop.spend_level[c] / (rate * young[c, 0]))
        online = merchants is V.ONLINE
        loc = 0 if online else _home(ctx, c)
        out.append(block(c, when(ctx, m), amount, "card", cps[i], 0, mccs[i], loc, nl))
    c, m = expand(ctx.ev.baby)
    cps, mccs = ctx.merchants(V.BABY_SHOPS)
    i = pick(ctx, c, np.arange(cps.size), 6, 0.6)
    amount = -lognormal_amount(ctx, np.full(c.size, 60.0), 0.8)
    out.append(block(c, when(ctx, m), amount, "card", cps[i], 0, mccs[i], _home(ctx, c), nl))
    c, m = expand(poisson(ctx, 0.8 * young))
    cash = np.maximum(np.round(lognormal_amount(ctx, 0.1 * pop.spend_level[c] / 0.8) / 10), 1)
    atm = ctx.cp(("Geldmaat",))[0]
    out.append(block(c, when(ctx, m), -10 * cash, "atm", atm, 0, 6011, _home(ctx, c), nl))
    return out


def special(ctx: Ctx) -> list[Block]:
    """Health, religion, politics, gambling and adult entertainment (GDPR art. 9 material)."""
    pop, out = ctx.pop, []
    nl = ctx.vocabs.country.code("NL")
    adult = pop.age_end >= 18
    for name, mcc, habit, rate, mean in SPECIAL:
        who = adult if habit is None else pop.habits[:, habit]
        c, m = expand(poisson(ctx, rate * who[:, None]))
        cp = ctx.cp((name,))[0]
        amount = -lognormal_amount(ctx, np.full(c.size, mean))
        out.append(block(c, when(ctx, m), amount, "card", cp, 0, mcc, _home(ctx, c), nl))
    return out


def travel(ctx: Ctx) -> list[Block]:
    """Flight bookings (airline), Schiphol and card and ATM payments abroad during trips."""
    ev, pop, out = ctx.ev, ctx.pop, []
    nl = ctx.vocabs.country.code("NL")
    start = (ctx.rng.random(ev.trip.shape) * (ctx.cal.days_in_month - 7)[None, :]).astype(np.int64)
    c, m = expand(ev.booking)  # the ticket is paid when booked, 1-3 months before the trip
    cps, mccs = ctx.merchants(V.AIRLINES)
    i = pick(ctx, c, np.arange(cps.size), 5, 0.6)
    fare = (150 + 350 * ctx.rng.random(c.size)) * (1 + pop.partner[c] + (pop.kids0[c] > 0))
    out.append(block(c, when(ctx, m), -fare, "card", cps[i], 0, mccs[i], 0, nl))
    schiphol = ctx.vocabs.location.code(V.SCHIPHOL_LOCATION)
    c, m = expand(ev.flight * (1 + ctx.rng.poisson(1.0, ev.trip.shape)))
    cps, mccs = ctx.merchants(V.SCHIPHOL)
    i = ctx.rng.integers(0, cps.size, c.size)
    t = when(ctx, m, start[c, m], (6.0, 20.0))
    amount = -lognormal_amount(ctx, np.full(c.size, 18.0))
    out.append(block(c, t, amount, "card", cps[i], 0, mccs[i], schiphol, nl))
    c, m = expand(ev.flight & (ctx.rng.random(ev.trip.shape) < 0.25))
    t = when(ctx, m, start[c, m], (6.0, 20.0))
    cash = -10.0 * ctx.rng.integers(5, 26, c.size)
    out.append(block(c, t, cash, "atm", ctx.cp(("Geldmaat",))[0], 0, 6011, schiphol, nl))
    out.extend(_abroad(ctx, start))
    return out


def _abroad(ctx: Ctx, start: np.ndarray) -> list[Block]:
    ev = ctx.ev
    merchant = np.array([ctx.cp(tuple(n for n, _ in V.ABROAD[k])) for k in TRIP_COUNTRIES])
    mcc = np.array([[x for _, x in V.ABROAD[k]] for k in TRIP_COUNTRIES], dtype=np.int32)
    city = np.array([ctx.vocabs.location.code(V.ABROAD_CITIES[k]) for k in TRIP_COUNTRIES])
    country = np.array(ctx.vocabs.country.codes(TRIP_COUNTRIES), dtype=np.int32)
    c, m = expand(ev.trip * (2 + ctx.rng.poisson(4.0, ev.trip.shape)))
    k = ev.country[c, m]
    i = ctx.rng.integers(0, merchant.shape[1], c.size)
    t = when(ctx, m, start[c, m] + ctx.rng.integers(0, 8, c.size), (8.0, 23.0))
    amount = -lognormal_amount(ctx, np.full(c.size, 45.0), 0.8)
    out = [block(c, t, amount, "card", merchant[k, i], 0, mcc[k, i], city[k], country[k])]
    c, m = expand(ev.trip & (ctx.rng.random(ev.trip.shape) < 0.3))
    k = ev.country[c, m]
    t = when(ctx, m, start[c, m] + ctx.rng.integers(0, 8, c.size), (8.0, 23.0))
    cash = -20.0 * ctx.rng.integers(2, 11, c.size)
    euronet = ctx.cp(("Euronet",))[0]
    out.append(block(c, t, cash, "atm", euronet, 0, 6011, city[k], country[k]))
    return out
