"""Benchmark: generate the 100k-customer x 24-month synthetic bank into a temporary directory.

Prints wall time, rows, rows/s and peak RSS. Run: /work/venv/bin/python benchmarks/generate.py
"""

from __future__ import annotations

import argparse
import resource
import sys
import tempfile
import time
from pathlib import Path

# Running `python benchmarks/generate.py` puts benchmarks/ first on sys.path, where sibling
# scripts (e.g. benchmarks/features.py) would shadow the packages of the same name.
sys.path[:] = [p for p in sys.path if Path(p or ".").resolve() != Path(__file__).parent.resolve()]

from synthbank import generate  # noqa: E402


def _peak_rss_mib() -> float:
    """Peak resident set size of this process (ru_maxrss is in KiB on Linux)."""
    own = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    children = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
    return max(own, children) / 1024


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--customers", type=int, default=100_000)
    parser.add_argument("--months", type=int, default=24)
    parser.add_argument("--seed", type=int, default=1)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        start = time.perf_counter()
        result = generate(args.customers, args.months, args.seed, Path(tmp) / "bank")
        wall = time.perf_counter() - start
        size = sum(p.stat().st_size for p in Path(tmp).rglob("*.parquet")) / 2**20
    tx = result.rows["transactions"]
    rows = [
        ("customers x months", f"{args.customers:,} x {args.months}"),
        ("wall time (s)", f"{wall:.1f}"),
        ("transactions", f"{tx:,}"),
        ("rows per customer-month", f"{tx / (args.customers * args.months):.1f}"),
        ("transactions/s", f"{tx / wall:,.0f}"),
        ("truth rows", f"{result.rows['truth']:,}"),
        ("output size (MiB)", f"{size:,.0f}"),
        ("peak RSS (MiB)", f"{_peak_rss_mib():,.0f}"),
    ]
    width = max(len(k) for k, _ in rows)
    for key, value in rows:
        print(f"{key:<{width}}  {value:>14}")


if __name__ == "__main__":
    main()
