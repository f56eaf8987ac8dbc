"""Regular money flows: income, benefits, one-off inflows and fixed monthly costs."""

from __future__ import annotations

from typing import NamedTuple

import numpy as np

from synthbank import vocab as V
from synthbank.events import BONUS, HOUSE_SALE, INHERITANCE
from synthbank.population import EMPLOYED, RETIRED, STUDENT, UNEMPLOYED, Population
from synthbank.rows import Block, Ctx, block, expand, pick, poisson, when

TRANSFER_HOURS = (5.0, 7.0)


def _monthly(ctx: Ctx, who: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """One row per active month for the customers in boolean mask `who`."""
    return expand(ctx.ev.active & who[:, None])


def income(ctx: Ctx) -> list[Block]:
    """Salaries, AOW, pensions, WW benefits, child benefit and pocket money."""
    pop, out = ctx.pop, []
    salary_desc = np.array([ctx.desc(f"SALARIS {lab}") for lab in ctx.cal.labels()])
    c, m = _monthly(ctx, (pop.status == EMPLOYED) | ((pop.status == STUDENT) & (pop.income > 0)))
    employer = ctx.cp(V.EMPLOYERS)[(pop.pick[c, 1] * len(V.EMPLOYERS)).astype(np.int64)]
    amount = pop.income[c] * (1 + 0.01 * ctx.rng.standard_normal(c.size))
    t = when(ctx, m, 23, TRANSFER_HOURS)
    out.append(block(c, t, amount, "transfer", employer, salary_desc[m]))
    svb, uwv = ctx.cp(("Sociale Verzekeringsbank", "UWV"))
    c, m = _monthly(ctx, pop.status == RETIRED)
    t = when(ctx, m, 22, TRANSFER_HOURS)
    out.append(block(c, t, pop.income[c], "transfer", svb, ctx.desc("AOW")))
    c, m = _monthly(ctx, pop.pension > 0)
    fund = pick(ctx, c, ctx.cp(V.PENSION_FUNDS), 2, 1.0)
    t = when(ctx, m, 24, TRANSFER_HOURS)
    out.append(block(c, t, pop.pension[c], "transfer", fund, ctx.desc("PENSIOEN")))
    c, m = _monthly(ctx, pop.status == UNEMPLOYED)
    t = when(ctx, m, 14, TRANSFER_HOURS)
    out.append(block(c, t, pop.income[c], "transfer", uwv, ctx.desc("WW-uitkering")))
    c, m = expand(ctx.ev.child_benefit > 0)
    t = when(ctx, m, 2, TRANSFER_HOURS)
    kb = ctx.ev.child_benefit[c, m]
    out.append(block(c, t, kb, "transfer", svb, ctx.desc("KINDERBIJSLAG")))
    c, m = _monthly(ctx, pop.age_end < 18)
    pocket = pop.spend_level[c] * 1.15
    out.append(
        block(c, when(ctx, m, 0, TRANSFER_HOURS), pocket, "transfer", 0, ctx.desc("Zakgeld"))
    )
    out.extend(_one_off(ctx))
    out.extend(_tikkie(ctx))
    return out


def _one_off(ctx: Ctx) -> list[Block]:
    """Bonuses from the employer, inheritances and house sales through a notary."""
    out = []
    employer = ctx.cp(V.EMPLOYERS)
    notary = ctx.cp(V.NOTARIES)
    for kind, text in (
        (BONUS, "BONUS"),
        (INHERITANCE, "NALATENSCHAP"),
        (HOUSE_SALE, "VERKOOP WONING"),
    ):
        c, m = expand(ctx.ev.inflow_kind == kind)
        if kind == BONUS:
            cp = employer[(ctx.pop.pick[c, 1] * employer.size).astype(np.int64)]
        else:
            cp = notary[ctx.rng.integers(0, notary.size, c.size)]
        t = when(ctx, m, None, (9.0, 17.0))
        out.append(block(c, t, ctx.ev.inflow[c, m], "transfer", cp, ctx.desc(text)))
    return out


def _tikkie(ctx: Ctx) -> list[Block]:
    """Small payments between friends, both ways."""
    tikkie = ctx.cp(("Tikkie",))[0]
    adult = (ctx.pop.age_end >= 18)[:, None]
    out = []
    for sign in (1.0, -1.0):
        c, m = expand(poisson(ctx, 0.8 * adult))
        amount = sign * np.round(5 + 40 * ctx.rng.random(c.size), 2)
        out.append(block(c, when(ctx, m), amount, "transfer", tikkie, ctx.desc("Tikkie")))
    return out


class Recurring(NamedTuple):
    """A monthly payment to a supplier the customer sticks with."""

    who: np.ndarray  # bool per customer
    names: tuple[str, ...]
    column: int  # which of the customer's fixed uniform draws picks the supplier
    amount: np.ndarray | float  # EUR per month (before a per-customer scale of 0.8-1.2)
    text: str
    day: int
    method: str = "direct_debit"


def _recurring(pop: Population) -> tuple[Recurring, ...]:
    adult, home, habits = pop.age_end >= 18, pop.housing > 0, pop.habits
    saving = 0.08 * (pop.income + pop.pension) + 50
    return (
        Recurring(home & pop.owner, V.MORTGAGE_BANKS, 3, pop.housing, "Hypotheek termijn", 0),
        Recurring(home & ~pop.owner, V.LANDLORDS, 3, pop.housing, "Huur", 0, "standing_order"),
        Recurring(home, V.ENERGY, 4, 90 + 0.02 * pop.housing, "Termijnbedrag energie", 4),
        Recurring(home, V.WATER, 5, 24.0, "Waterrekening", 9),
        Recurring(adult, V.TELECOM, 6, 55.0, "Abonnement", 19),
        Recurring(adult, V.HEALTH_INSURERS, 0, 152.0, "Premie zorgverzekering", 0),
        Recurring(habits[:, 5], V.OTHER_INSURERS, 7, 45.0, "Premie verzekering", 1),
        Recurring(pop.travel_insured, V.TRAVEL_INSURERS, 2, 7.5, "Premie reisverzekering", 1),
        Recurring(
            pop.saves_elsewhere, V.SAVINGS_ELSEWHERE, 3, saving, "Inleg", 25, "standing_order"
        ),
        Recurring(habits[:, 0], V.UNIONS, 4, 21.0, "Contributie", 26),
        Recurring(habits[:, 1], (V.PARISH,), 0, 20.0, "Gift", 27, "standing_order"),
    )


def fixed_costs(ctx: Ctx) -> list[Block]:
    """Housing, utilities, insurance premiums, savings elsewhere, memberships, fees, debts."""
    out = [_debit(ctx, r) for r in _recurring(ctx.pop)]
    c, m = _monthly(ctx, ctx.pop.age_end >= 18)
    out.append(block(c, when(ctx, m, 0, (1.0, 2.0)), -3.25, "fee", 0, ctx.desc("Betaalpakket")))
    c, m = expand(ctx.ev.debt)
    cp = pick(ctx, c, ctx.cp(V.DEBT_COLLECTORS), 5, 0.9)
    amount = -np.round(50 + 200 * ctx.rng.random(c.size), 2)
    out.append(block(c, when(ctx, m), amount, "transfer", cp, ctx.desc("Betaling vordering")))
    return out


def _debit(ctx: Ctx, r: Recurring) -> Block:
    """One row per active month for the customers who pay `r`."""
    c, m = _monthly(ctx, r.who)
    cp = pick(ctx, c, ctx.cp(r.names), r.column, 1.0)
    scale = 0.8 + 0.4 * ctx.pop.pick[c, (r.column + 1) % 8]
    amount = np.broadcast_to(np.asarray(r.amount, dtype=np.float64), (ctx.pop.n,))[c]
    t = when(ctx, m, r.day, TRANSFER_HOURS)
    return block(c, t, -np.round(amount * scale, 2), r.method, cp, ctx.desc(r.text))
