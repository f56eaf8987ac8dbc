"""Benchmark: one bucket's work, step by step, with the code of one source tree.

Validation, the run date, features with the distress flags and eligibility facts (what a
bucket computes besides the scores), the online snapshot (SQLite) and the drift bins of one
product, on one bank, with wall and CPU seconds per step and the peak RSS of the process.
Run it once per tree (e.g. main and a branch) to compare them on the same data:

    for tree in /work/main $PWD; do
        flock /tmp/bench.lock env POLARS_MAX_THREADS=2 PYTHONPATH=$tree \\
            /work/venv/bin/python benchmarks/one_bucket.py $tree /tmp/bank-200k
    done
"""

from __future__ import annotations

import os
import resource
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

ROOT, DATA = sys.argv[1], Path(sys.argv[2])
sys.path.insert(0, ROOT)

import polars as pl  # noqa: E402

from features.config import FeatureConfig  # noqa: E402
from features.io import load_tables  # noqa: E402
from features.timetravel import as_known_at  # noqa: E402
from propensity.job import default_as_of  # noqa: E402
from serving.config import ServingConfig  # noqa: E402
from serving.consent import consent_gate  # noqa: E402


def timed(label: str, fn: Callable[[], Any]) -> Any:
    wall, cpu = time.perf_counter(), time.process_time()
    out = fn()
    wall, cpu = time.perf_counter() - wall, time.process_time() - cpu
    print(f"{label:28s} wall {wall:7.1f} s  cpu {cpu:7.1f} s", flush=True)
    return out


def bucket_work(tables: Any, as_of: Any, fc: FeatureConfig, sc: ServingConfig) -> tuple:
    """Features, distress flags and facts as the tree computes them for a bucket."""
    gate = consent_gate(as_known_at(tables, as_of))
    try:
        from serving.eligibility import per_customer
    except ImportError:  # before the shared scan: three functions, three scans
        from features.pipeline import build_features
        from serving.eligibility import customer_facts, distress_frame

        return (
            build_features(gate.tables, as_of, fc).collect(),
            distress_frame(gate.tables, as_of, sc, fc).collect(),
            customer_facts(gate.tables, as_of, sc, fc).collect(),
        )
    found = per_customer(gate.tables, as_of, sc, fc)
    return found.features, found.distress, found.facts


def main() -> None:
    from models.drift_reference import bin_shares, decile_edges
    from serving.online_store import write_online_snapshot

    print(ROOT, "load average", os.getloadavg(), flush=True)
    load = timed("validation", lambda: load_tables(DATA))
    tables = load.tables
    takes_load = "load" in default_as_of.__code__.co_varnames
    as_of = timed(
        "run date", lambda: default_as_of(tables, load) if takes_load else default_as_of(tables)
    )
    fc, sc = FeatureConfig(), ServingConfig()
    features, distress, facts = timed(
        "features+distress+facts", lambda: bucket_work(tables, as_of, fc, sc)
    )
    with tempfile.TemporaryDirectory(prefix="one-bucket-") as tmp:
        url = f"sqlite:///{tmp}/ledger.sqlite"
        timed(
            "online snapshot",
            lambda: write_online_snapshot(
                url, as_known_at(tables, as_of), features, as_of, sc, run_id="r1",
                feature_config=fc, facts=facts, distress=distress,
            ),
        )  # fmt: skip
        print(f"snapshot file {os.path.getsize(f'{tmp}/ledger.sqlite') / 1e9:.2f} GB")
    names = [c for c in features.columns if c not in ("customer_id", "as_of")]
    edges = decile_edges(features.select(names).head(50_000), 10)
    timed("drift bins (1 product)", lambda: bin_shares(features.select(names), edges))
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20
    print(f"peak RSS {peak:.2f} GB; {features.height:,} customers")
    print(
        "distress",
        int(distress["in_distress"].sum()),
        "child benefit",
        int(facts["child_benefit"].sum()),
    )
    print("load average", os.getloadavg(), pl.__version__)


if __name__ == "__main__":
    main()
