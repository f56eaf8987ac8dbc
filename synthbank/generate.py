"""`generate`: write a synthetic bank (the five contract tables + truth.parquet) to a directory.

Customers are simulated in fixed-size chunks, each with its own random stream derived from
(seed, chunk number): the output depends only on the arguments, never on the machine, and memory
stays bounded. Transactions go to `transactions/part-NNNNN.parquet`, one file per chunk.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import date
from pathlib import Path

import numpy as np
import polars as pl

from features.errors import ConfigError
from synthbank import flows, spending, tables
from synthbank.assemble import assemble
from synthbank.calendar import Calendar
from synthbank.events import make_events
from synthbank.openings import simulate
from synthbank.population import make_population
from synthbank.rows import Ctx
from synthbank.vocab import Vocabs

log = logging.getLogger(__name__)

DEFAULT_END = date(2026, 11, 1)
CHUNK = 4096
SMALL_TABLES = ("customers", "products", "consents", "contacts", "truth")
PARQUET = {"compression": "lz4", "statistics": True}


@dataclass
class GenerateResult:
    """What was written, with row counts per table."""

    out: Path
    rows: dict[str, int] = field(default_factory=dict)


@dataclass
class Chunk:
    """All tables of one chunk of customers."""

    transactions: pl.DataFrame
    small: dict[str, pl.DataFrame]


def simulate_chunk(seed: int, index: int, n: int, cal: Calendar) -> Chunk:
    """Simulate customers `index*CHUNK ...` with the chunk's own random stream."""
    rng = np.random.default_rng([seed, index])
    pop = make_population(rng, index * CHUNK, n, cal)
    ev = make_events(rng, pop, cal)
    op = simulate(rng, pop, ev, cal)
    ctx = Ctx(rng=rng, pop=pop, ev=ev, cal=cal, vocabs=Vocabs())
    blocks = [
        *flows.income(ctx),
        *flows.fixed_costs(ctx),
        *spending.everyday(ctx),
        *spending.special(ctx),
        *spending.travel(ctx),
    ]
    small = {
        "customers": tables.customers(pop),
        "products": tables.products(pop, op),
        "consents": tables.consents(rng, pop, cal),
        "contacts": tables.contacts(rng, pop, ev, op, cal),
        "truth": tables.truth(pop, op, cal),
    }
    return Chunk(assemble(blocks, pop, ctx.vocabs, int(cal.start_us[0])), small)


def _check(customers: int, months: int, end: date) -> None:
    if customers < 1:
        raise ConfigError(f"--customers must be at least 1, got {customers}")
    if not 1 <= months <= 600:
        raise ConfigError(f"--months must be between 1 and 600, got {months}")
    if end.day != 1:
        raise ConfigError(f"--end must be the first day of a month, got {end.isoformat()}")
    if end > date.today():
        raise ConfigError(f"--end {end.isoformat()} lies in the future; nothing may be dated later")


def _prepare(out: Path) -> Path:
    parts = out / "transactions"
    parts.mkdir(parents=True, exist_ok=True)
    for old in parts.glob("part-*.parquet"):
        old.unlink()
    return parts


def generate(
    customers: int,
    months: int,
    seed: int,
    out: Path,
    end: date = DEFAULT_END,
    progress: Callable[[int, int], None] | None = None,
) -> GenerateResult:
    """Write a bank of `customers` over the `months` whole months before `end` into `out`.

    Same arguments, same bytes. `progress(done, total)` is called after every chunk.
    """
    _check(customers, months, end)
    out = Path(out)
    parts = _prepare(out)
    cal = Calendar(end=end, months=months)
    result = GenerateResult(out=out, rows={"transactions": 0})
    small: dict[str, list[pl.DataFrame]] = {name: [] for name in SMALL_TABLES}
    n_chunks = -(-customers // CHUNK)
    for i in range(n_chunks):
        n = min(CHUNK, customers - i * CHUNK)
        chunk = simulate_chunk(seed, i, n, cal)
        chunk.transactions.write_parquet(parts / f"part-{i:05d}.parquet", **PARQUET)
        result.rows["transactions"] += chunk.transactions.height
        for name, frame in chunk.small.items():
            small[name].append(frame)
        if progress is not None:
            progress(i + 1, n_chunks)
    for name, frames in small.items():
        frame = pl.concat(frames)
        frame.write_parquet(out / f"{name}.parquet", **PARQUET)
        result.rows[name] = frame.height
    log.info("generated %s in %s", result.rows, out)
    return result
