"""Regular money flows: income, benefits, one-off inflows and fixed monthly costs."""

from __future__ import annotations

import numpy as np

from synthbank import vocab as V
from synthbank.events import BONUS, HOUSE_SALE, INHERITANCE
from synthbank.population import EMPLOYED, RETIRED, STUDENT, UNEMPLOYED
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
    aow = np.where(pop.partner[c], 1015.0, pop.income[c])
    out.append(block(c, when(ctx, m, 22, TRANSFER_HOURS), aow, "transfer", svb, ctx.desc("AOW")))
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
    out.append(block(c, when(ctx, m, 0, TRANSFER_HOURS), pocket, "transfer", 0, ctx.desc("Zakgeld")))
    out.extend(_one_off(ctx))
    out.extend(_tikkie(ctx))
    return out


def _one_off(ctx: Ctx) -> list[Block]:
    """Bonuses from the employer, inheritances and house sales through a notary."""
    out = []
    employer = ctx.cp(V.EMPLOYERS)
    notary = ctx.cp(V.NOTARIES)
    for kind, text in ((BONUS, "BONUS"), (INHERITANCE, "NALATENSCHAP"), (HOUSE_SALE, "VERKOOP WONING")):
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


def fixed_costs(ctx: Ctx) -> list[Block]:
    """Housing, utilities, insurance premiums, savings elsewhere, fees, debts."""
    pop, out = ctx.pop, []
    adult = pop.age_end >= 18
    home = pop.housing > 0
    c, m = _monthly(ctx, home & pop.owner)
    cp = pick(ctx, c, ctx.cp(V.MORTGAGE_BANKS), 3, 1.0)
    t = when(ctx, m, 0, TRANSFER_HOURS)
    out.append(block(c, t, -pop.housing[c], "direct_debit", cp, ctx.desc("Hypotheek termijn")))
    c, m = _monthly(ctx, home & ~pop.owner)
    cp = pick(ctx, c, ctx.cp(V.LANDLORDS), 3, 1.0)
    out.append(block(c, when(ctx, m, 0, TRANSFER_HOURS), -pop.housing[c], "standing_order", cp,
                     ctx.desc("Huur")))
    out.append(_debit(ctx, home, V.ENERGY, 4, 90 + 0.02 * pop.housing, "Termijnbedrag energie", 4))
    out.append(_debit(ctx, home, V.WATER, 5, np.full(pop.n, 24.0), "Waterrekening", 9))
    out.append(_debit(ctx, adult, V.TELECOM, 6, np.full(pop.n, 55.0), "Abonnement", 19))
    out.append(_debit(ctx, adult, V.HEALTH_INSURERS, 0, np.full(pop.n, 152.0),
                      "Premie zorgverzekering", 0))
    out.append(_debit(ctx, pop.habits[:, 5], V.OTHER_INSURERS, 7, np.full(pop.n, 45.0),
                      "Premie verzekering", 1))
    out.append(_debit(ctx, pop.travel_insured, V.TRAVEL_INSURERS, 2, np.full(pop.n, 7.5),
                      "Premie reisverzekering", 1))
    saving = 0.08 * (pop.income + pop.pension) + 50
    out.append(_debit(ctx, pop.saves_elsewhere, V.SAVINGS_ELSEWHERE, 3, saving, "Inleg", 25,
                      "standing_order"))
    out.append(_debit(ctx, pop.habits[:, 0], V.UNIONS, 4, np.full(pop.n, 21.0), "Contributie", 26))
    out.append(_debit(ctx, pop.habits[:, 1], ("Parochie H. Nicolaas",), 0, np.full(pop.n, 20.0),
                      "Gift", 27, "standing_order"))
    c, m = _monthly(ctx, adult)
    out.append(block(c, when(ctx, m, 0, (1.0, 2.0)), -3.25, "fee", 0, ctx.desc("Betaalpakket")))
    c, m = expand(ctx.ev.debt)
    cp = pick(ctx, c, ctx.cp(V.DEBT_COLLECTORS), 5, 0.9)
    amount = -np.round(50 + 200 * ctx.rng.random(c.size), 2)
    out.append(block(c, when(ctx, m), amount, "transfer", cp, ctx.desc("Betaling vordering")))
    return out


def _debit(
    ctx: Ctx,
    who: np.ndarray,
    names: tuple[str, ...],
    column: int,
    amount: np.ndarray,
    text: str,
    day: int,
    method: str = "direct_debit",
) -> Block:
    """A monthly collection from a supplier the customer sticks with."""
    c, m = _monthly(ctx, who)
    cp = pick(ctx, c, ctx.cp(names), column, 1.0)
    scale = 0.8 + 0.4 * ctx.pop.pick[c, (column + 1) % 8]
    t = when(ctx, m, day, TRANSFER_HOURS)
    return block(c, t, -np.round(amount[c] * scale, 2), method, cp, ctx.desc(text))
