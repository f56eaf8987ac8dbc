"""Compute backends: `[compute]` in the config file chooses where the per-bucket work runs.

`local` (the default) runs the engine in this process and never imports Dask: in one go when
the per-customer work fits the memory budget (derived from the machine), else bucket by bucket
of customer-disjoint Parquet parts with the same `serving.buckets` code Dask runs
(`local_buckets`).
`processes` starts a `dask.distributed.LocalCluster` on 127.0.0.1 (workers of one thread,
each worker's polars pool and LightGBM `n_jobs` set to its share of the cores); an address
`tcp://host:8786` uses an existing Dask cluster. The work itself is in `serving.buckets`.
"""

from __future__ import annotations

import importlib
import logging
import os
import re
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, field_validator

from features.errors import ConfigError

log = logging.getLogger(__name__)

ADDRESS = re.compile(r"^(tcp|tls)://[A-Za-z0-9_.\-\[\]:]+:\d+$")
NO_DASK = '[compute] scheduler = {!r} needs Dask: pip install -e ".[dask]"'


class ComputeConfig(BaseModel):
    """Where the per-customer work runs (scores, features, distress flags per bucket)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    scheduler: str = Field(
        "local",
        description='"local" (one process, no Dask), "processes" (a Dask LocalCluster on '
        'this machine) or the address of a Dask scheduler, e.g. "tcp://10.0.0.5:8786"',
    )
    workers: int = Field(2, ge=1, description="worker processes of the LocalCluster")
    memory_limit: str = Field("auto", description='per LocalCluster worker, e.g. "4GiB"')
    connect_timeout: float = Field(10.0, gt=0, description="seconds to reach a scheduler address")
    buckets: int = Field(
        8,
        ge=1,
        description="customer-hash buckets when the transactions are not customer-disjoint "
        "Parquet parts (a directory of parts is otherwise one bucket per part)",
    )

    local_memory: str = Field(
        "auto",
        description='memory the local scheduler may use for features and scores, e.g. "8GiB"; '
        '"auto": half of the memory available at the start. Above it: bucket by bucket',
    )

    @field_validator("local_memory")
    @classmethod
    def _size(cls, value: str) -> str:
        if value != "auto":
            parse_size(value)
        return value

    @field_validator("scheduler")
    @classmethod
    def _known(cls, value: str) -> str:
        if value in ("local", "processes") or ADDRESS.match(value):
            return value
        raise ValueError(
            f'scheduler {value!r}: use "local", "processes" or an address like '
            '"tcp://10.0.0.5:8786"'
        )

    @property
    def uses_dask(self) -> bool:
        return self.scheduler != "local"


UNITS = {"": 1, "B": 1, "KB": 10**3, "MB": 10**6, "GB": 10**9, "TB": 10**12}
UNITS |= {"KIB": 2**10, "MIB": 2**20, "GIB": 2**30, "TIB": 2**40}
SIZE = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*([A-Za-z]*)\s*$")

BYTES_PER_TRANSACTION = 100
"""Peak memory per transaction of scoring in one go: a property of the feature code, not of
the bank. Measured: the whole scoring-only `propensity run` of 52.9M transactions (100,000
customers) peaked at 3.86 GB, 73 bytes per transaction (`benchmarks/nightly.py`,
2026-12-01); `benchmarks/features.py` found about 60 for the features alone. Rounded up, so the
estimate errs towards buckets."""


def parse_size(text: str) -> int:
    """Bytes in a size such as "512MiB", "8GiB" or "4GB"; ValueError naming an example."""
    match = SIZE.match(text)
    if match is None or match.group(2).upper() not in UNITS:
        raise ValueError(f'size {text!r}: use a number and a unit, e.g. "8GiB" or "512MB"')
    return int(float(match.group(1)) * UNITS[match.group(2).upper()])


def available_memory() -> int:
    """Bytes of memory available to this process now (psutil; the cgroup limit if lower)."""
    import psutil

    avail = psutil.virtual_memory().available
    try:
        limit = Path("/sys/fs/cgroup/memory.max").read_text().strip()
        if limit.isdigit():
            avail = min(avail, int(limit) - psutil.Process().memory_info().rss)
    except OSError:
        pass
    return avail


def transaction_parts(data_dir: Path) -> list[tuple[Path, int]]:
    """(part, rows) of each Parquet part of the transactions directory, from the footers only;
    empty when the transactions are one file (CSV or Parquet)."""
    import pyarrow.parquet as pq

    from features.io import find_table

    path = find_table(Path(data_dir), "transactions")
    if path is None or not path.is_dir():
        return []
    return [(p, pq.read_metadata(p).num_rows) for p in sorted(path.glob("*.parquet"))]


def local_buckets(
    config: ComputeConfig, data_dir: Path, say: Callable[[str], None] | None = None
) -> Any:
    """None when the per-customer work fits `config.local_memory` in one go; else a
    `serving.buckets.Buckets` on the in-process backend with as many consecutive parts per
    bucket as fit the budget. Tells `say` (else the log) what was derived and from what."""
    say = say or log.info
    parts = transaction_parts(data_dir)
    if len(parts) < 2:
        say("local, in one go (the transactions are not two or more Parquet parts)")
        return None  # one file: nothing to split by (re-bucketing by hash re-reads it all)
    rows = sum(n for _, n in parts)
    auto = config.local_memory == "auto"
    budget = available_memory() // 2 if auto else parse_size(config.local_memory)
    need = rows * BYTES_PER_TRANSACTION
    origin = "half the available memory" if auto else "[compute] local_memory"
    sizes = (
        f"{rows:,} transactions x {BYTES_PER_TRANSACTION} B = {need / 2**30:.1f} GiB "
        f"{'<=' if need <= budget else '>'} {budget / 2**30:.1f} GiB, {origin}"
    )
    if need <= budget:
        say(f"local, in one go ({sizes})")
        return None
    per_part = max(n for _, n in parts) * BYTES_PER_TRANSACTION
    per_bucket = int(max(1, budget // max(per_part, 1)))
    n_buckets = -(-len(parts) // per_bucket)
    say(f"local, bucket by bucket ({sizes}): {n_buckets} bucket(s) of {per_bucket} part(s)")
    from serving.buckets import Buckets, InProcess

    return Buckets(InProcess(), Path(data_dir), parts_per_bucket=per_bucket)


class DaskBackend:
    """`serving.buckets.Backend` on a Dask client: handles are futures that stay on workers."""

    def __init__(self, client: Any) -> None:
        self.client = client

    def submit(self, fn: Callable[..., Any], *args: Any) -> Any:
        return self.client.submit(fn, *args, pure=False)

    def scatter(self, value: Any) -> Any:
        # the champion bundles travel to each worker once; every bucket task then refers to them
        return self.client.scatter(value, broadcast=True, hash=False)

    def gather(self, handles: list[Any]) -> list[Any]:
        return list(self.client.gather(handles))


def worker_threads(workers: int, cores: int | None = None) -> int:
    """Each worker's share of the cores: its polars pool size and LightGBM n_jobs."""
    return max(1, (cores or os.cpu_count() or 1) // workers)


@contextmanager
def _local_cluster(config: ComputeConfig) -> Iterator[Any]:
    """A LocalCluster on loopback only; thread pools sized before each worker imports polars."""
    import dask
    from distributed import Client, LocalCluster

    share = str(worker_threads(config.workers))
    pools = {"POLARS_MAX_THREADS": share, "OMP_NUM_THREADS": share}
    saved = {k: os.environ.get(k) for k in pools}
    with dask.config.set({f"distributed.nanny.pre-spawn-environ.{k}": v for k, v in pools.items()}):
        cluster = LocalCluster(
            n_workers=config.workers,
            threads_per_worker=1,
            processes=True,
            host="127.0.0.1",
            dashboard_address=None,
            memory_limit=config.memory_limit,
        )
    for key, value in saved.items():  # the nanny sets them in this process too: undo that
        if value is None:
            os.environ.pop(key, None)
        else:
            os.environ[key] = value
    try:
        with Client(cluster) as client:
            yield client
    finally:
        cluster.close()


@contextmanager
def dask_client(config: ComputeConfig) -> Iterator[Any]:
    """A Dask client for `config` (a LocalCluster or the configured scheduler address)."""
    try:
        import distributed  # noqa: F401
    except ImportError:
        raise ConfigError(NO_DASK.format(config.scheduler)) from None
    # the scheduler's and workers' start-up chatter at INFO would drown the job's step lines
    logging.getLogger("distributed").setLevel(logging.WARNING)
    if config.scheduler == "processes":
        with _local_cluster(config) as client:
            yield client
        return
    from distributed import Client

    try:
        client = Client(config.scheduler, timeout=config.connect_timeout)
    except OSError as exc:
        raise ConfigError(
            f"[compute] scheduler {config.scheduler!r} is not reachable ({exc}); "
            'start one with `dask scheduler` or use scheduler = "processes"'
        ) from None
    with client:
        yield client


@contextmanager
def open_compute(
    config: ComputeConfig, data_dir: Path, say: Callable[[str], None] | None = None
) -> Iterator[Any]:
    """None for the local scheduler when the data fits (decide_run's one in-process path),
    else the `serving.buckets.Buckets` to hand to `decide_run(compute=...)`, open for the
    block (in process when local, on Dask otherwise). `say` hears the choice, in words."""
    if not config.uses_dask:
        yield local_buckets(config, data_dir, say)
        return
    from serving.buckets import Buckets

    with dask_client(config) as client:
        # each worker imports the engine once, now, not inside the first bucket's timing
        client.run(importlib.import_module, "serving.buckets")
        workers = len(client.scheduler_info().get("workers", {}))
        (say or log.info)(f"Dask, {config.scheduler} with {workers} worker(s)")
        yield Buckets(DaskBackend(client), Path(data_dir), n_hash=config.buckets)
