"""`generate`: write a synthetic bank (the five contract tables + truth.parquet) to a directory.

Customers are simulated in fixed-size chunks, each with its own random stream derived from
(seed, chunk number): the output depends only on the arguments, never on the machine, and memory
stays bounded. Transactions go to `transactions/part-NNNNN.parquet`, one file per chunk.
"""

from __future__ import annotations

import logging
import os
import shutil
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import date
from pathlib import Path

import numpy as np
import polars as pl
import pyarrow as pa
import pyarrow.parquet as pq

from features.errors import ConfigError
from synthbank import flows, spending, tables
from synthbank.assemble import assemble, concat, month_end_balance
from synthbank.calendar import Calendar
from synthbank.events import make_events
from synthbank.openings import simulate
from synthbank.population import make_population
from synthbank.profiles import PROFILES, Profile, get_profile
from synthbank.rows import Ctx
from synthbank.vocab import Vocabs

log = logging.getLogger(__name__)

DEFAULT_END = date(2026, 11, 1)
CHUNK = 4096
SMALL_TABLES = ("customers", "products", "consents", "contacts", "truth")
DICTIONARY_COLUMNS = [
    "customer_id",
    "account_id",
    "method",
    "counterparty_name",
    "counterparty_iban",
    "description",
    "mcc",
    "location",
    "country",
]
PARQUET = {"compression": "lz4", "statistics": True}


@dataclass
class GenerateResult:
    """What was written, with row counts per table."""

    out: Path
    rows: dict[str, int] = field(default_factory=dict)


@dataclass
class Chunk:
    """All tables of one chunk of customers."""

    transactions: pa.Table
    small: dict[str, pl.DataFrame]


def simulate_chunk(seed: int, index: int, n: int, cal: Calendar) -> Chunk:
    """Simulate customers `index*CHUNK ...` with the chunk's own random stream."""
    rng = np.random.default_rng([seed, index])
    pop = make_population(rng, index * CHUNK, n, cal)
    ev = make_events(rng, pop, cal)
    ctx = Ctx(rng=rng, pop=pop, ev=ev, cal=cal, vocabs=Vocabs())
    blocks = [
        *flows.income(ctx),
        *flows.fixed_costs(ctx),
        *spending.everyday(ctx),
        *spending.special(ctx),
        *spending.travel(ctx),
    ]
    cols = concat(blocks, pop)
    op = simulate(rng, pop, ev, cal, month_end_balance(cols, pop, cal))
    consents, allowed = tables.consents(rng, pop, cal)
    small = {
        "customers": tables.customers(pop),
        "products": tables.products(pop, op),
        "consents": consents,
        "contacts": tables.contacts(rng, pop, ev, op, cal, allowed),
        "truth": tables.truth(pop, op, cal),
    }
    return Chunk(assemble(cols, pop, ctx.vocabs, int(cal.start_us[0])), small)


def _check(customers: int, months: int, end: date) -> None:
    if customers < 1:
        raise ConfigError(f"--customers must be at least 1, got {customers}")
    if not 1 <= months <= 600:
        raise ConfigError(f"--months must be between 1 and 600, got {months}")
    if end.day != 1:
        raise ConfigError(f"--end must be the first day of a month, got {end.isoformat()}")
    if end > date.today():
        raise ConfigError(f"--end {end.isoformat()} lies in the future; nothing may be dated later")


def _staging(out: Path) -> Path:
    """A fresh hidden directory of this process next to `out` to write into: `out` only ever
    sees finished tables (see `_publish`). What a crashed run left is removed; a directory of
    another generation still running (its process alive) is left alone."""
    for old in out.parent.glob(f".{out.name}.*partial"):
        if not _alive(old.name.removeprefix(f".{out.name}").removesuffix("partial").strip(".")):
            shutil.rmtree(old, ignore_errors=True)
    staging = out.parent / f".{out.name}.{os.getpid()}.partial"
    shutil.rmtree(staging, ignore_errors=True)
    (staging / "transactions").mkdir(parents=True)
    return staging


def _alive(pid: str) -> bool:
    """Whether the process that named a staging directory still runs (the name of an older
    version carries no pid: never alive)."""
    if not pid.isdigit():
        return False
    try:
        os.kill(int(pid), 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # another user's process: alive
        return True
    return True


def _publish(staging: Path, out: Path) -> None:
    """Move the finished tables from `staging` into `out`, first removing what an earlier run
    (or another layout) left there that the loader would read instead of, or together with,
    the new files. An interrupted run never gets here, so `out` keeps its earlier bank."""
    parts = out / "transactions"
    parts.mkdir(parents=True, exist_ok=True)
    stale = [*parts.glob("part-*.parquet"), out / "transactions.parquet"]
    stale += [out / f"{name}.csv" for name in ("transactions", *SMALL_TABLES)]
    for path in stale:
        path.unlink(missing_ok=True)
    for part in sorted((staging / "transactions").iterdir()):
        part.rename(parts / part.name)
    for name in SMALL_TABLES:
        (staging / f"{name}.parquet").replace(out / f"{name}.parquet")
    shutil.rmtree(staging)


def _write_part(table: pa.Table, path: Path) -> None:
    """Dictionary-encoded strings are written as plain UTF-8 columns (no Arrow schema stored),
    so every reader sees String columns."""
    pq.write_table(
        table,
        path,
        compression="snappy",
        use_dictionary=[c for c in DICTIONARY_COLUMNS if c in table.column_names],
        write_statistics=["customer_id", "booked_at"],  # min/max of every string is costly
        store_schema=False,
    )


def _write_chunks(
    customers: int,
    seed: int,
    cal: Calendar,
    parts: Path,
    progress: Callable[[int, int], None] | None,
    profile: Profile = PROFILES["dutch"],
) -> tuple[int, dict[str, list[pl.DataFrame]]]:
    """Simulate every chunk and write its transactions; return the row count and the small
    tables. Writing chunk i (Arrow releases the GIL) overlaps with simulating chunk i+1."""
    rows, small = 0, {name: [] for name in SMALL_TABLES}
    n_chunks = -(-customers // CHUNK)
    with ThreadPoolExecutor(max_workers=1) as writer:
        pending: Future[None] | None = None
        for i in range(n_chunks):
            chunk = simulate_chunk(seed, i, min(CHUNK, customers - i * CHUNK), cal)
            if pending is not None:
                pending.result()
            path = parts / f"part-{i:05d}.parquet"
            transactions = profile.transactions(chunk.transactions)
            pending = writer.submit(_write_part, transactions, path)
            rows += transactions.num_rows
            for name, frame in chunk.small.items():
                small[name].append(profile.small(name, frame))
            if progress is not None:
                progress(i + 1, n_chunks)
        if pending is not None:
            pending.result()
    return rows, small


def generate(
    customers: int,
    months: int,
    seed: int,
    out: Path,
    end: date = DEFAULT_END,
    progress: Callable[[int, int], None] | None = None,
    profile: str = "dutch",
) -> GenerateResult:
    """Write a bank of `customers` over the `months` whole months before `end` into `out`.

    `profile` (`synthbank.profiles`): "dutch" (default) or "foreign" (another currency and
    product names, no mcc/location/country, English descriptions, zoned timestamps).

    Same arguments, same bytes. `progress(done, total)` is called after every chunk. The
    tables are written next to `out` and moved in only when all are done, so an interrupted
    run leaves `out` as it was.
    """
    chosen = get_profile(profile)
    _check(customers, months, end)
    out = Path(out)
    staging = _staging(out)
    cal = Calendar(end=end, months=months)
    try:
        tx_rows, small = _write_chunks(
            customers, seed, cal, staging / "transactions", progress, chosen
        )
        result = GenerateResult(out=out, rows={"transactions": tx_rows})
        for name, frames in small.items():
            frame = pl.concat(frames)
            frame.write_parquet(staging / f"{name}.parquet", **PARQUET)
            result.rows[name] = frame.height
    except BaseException:  # Ctrl-C included; after a hard kill the next run cleans up
        shutil.rmtree(staging, ignore_errors=True)
        raise
    _publish(staging, out)
    log.info("generated %s in %s", result.rows, out)
    return result
