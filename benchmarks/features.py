"""Benchmark: the feature pipeline against pandas and DuckDB on the synthetic bank.

Engines (each run in its own subprocess, so peak RSS is per engine):
  polars-full   `features.pipeline.build_features`: the FULL feature set (212 columns), scan and
                categorisation included, collected with the streaming engine
  polars-tx     the project's stages for the transaction families only (174 columns: flows
                with airport/abroad splits and largest inflow, customer x category, recency;
                the whole history, like the full set)
  duckdb-tx     the same transaction families in DuckDB (the same work as polars-tx)
  polars-core   the project's stages for the core aggregates only
  duckdb-core   the same core aggregates in DuckDB (one pass, FILTER clauses, PIVOT)
  pandas-core   the same core aggregates in straightforward pandas
  polars-many   `build_features_many` for the 13 month starts up to the date (a training set;
                not run by default: --engines polars-many)
The engines take turns (round-robin: A B C A B C A B C), so a slow spell of the shared machine
hits all of them alike; the best of `--repeat` runs (default 3) is shown. The core outputs of
DuckDB and pandas, and the core columns of polars-full, are checked to hold the same numbers
as polars-core; duckdb-tx and the same columns of polars-full against polars-tx. DuckDB does
not compute the balances, income and life events (a running balance per customer and day
without special rows is not written in SQL here): the full set has no DuckDB twin, the
transaction families are the largest like-for-like comparison. Every engine applies the
consent gate (`features.consent.profilable_ids`: no objector, no customer without a consent
row). `--stages` adds the stages of polars-full timed
one after the other (benchmarks/features_stages.py), each in its own subprocess as well.
Data: `propensity generate` with 20k customers (~11M transactions) and 100k customers (~53M),
generated once and reused.

Run: /work/venv/bin/python benchmarks/features.py [--sizes 10m 50m] [--repeat 3] [--stages]
     [--json]   (--json prints one JSON document instead of the tables)
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from datetime import date
from pathlib import Path
from typing import Any

import polars as pl

HERE = Path(__file__).resolve().parent
# This file is called features.py: keep its folder off the path so `features` is the package.
sys.path[:] = [p for p in sys.path if Path(p or ".").resolve() != HERE]
SIZES = {
    "10m": (20_000, Path("/tmp/bench-data-10m")),
    "50m": (100_000, Path("/tmp/bench-data-50m")),
}
ENGINES = ("polars-full", "polars-tx", "duckdb-tx", "polars-core", "duckdb-core", "pandas-core")
# Each reference engine and the engines whose output must hold its numbers (its columns).
CHECKS = {
    "polars-core": ("duckdb-core", "pandas-core", "polars-full"),
    "polars-tx": ("duckdb-tx", "polars-full"),
}
EXTRA_ENGINES = ("polars-many", "polars-stages")
AS_OF = date(2026, 11, 1)


def worker(engine: str, data: Path, out: Path) -> None:
    """Run one engine once; print wall seconds, CPU seconds of the same span (user + system,
    all threads: less sensitive than wall time to other jobs on a shared machine) and peak
    RSS as JSON."""
    import importlib.util

    from features.config import FeatureConfig
    from features.pipeline import build_features, build_features_many

    spec = importlib.util.spec_from_file_location(
        "features_baselines", HERE / "features_baselines.py"
    )
    assert spec is not None and spec.loader is not None
    base = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(base)
    config = FeatureConfig()
    if engine == "polars-stages":
        stages_spec = importlib.util.spec_from_file_location(
            "features_stages", HERE / "features_stages.py"
        )
        assert stages_spec is not None and stages_spec.loader is not None
        stages = importlib.util.module_from_spec(stages_spec)
        stages_spec.loader.exec_module(stages)
        times = stages.stage_times(base.scan_tables(data), AS_OF, config)
        rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
        print(json.dumps({"stages": times, "rss_mib": rss}))
        return
    start, cpu_start = time.perf_counter(), time.process_time()
    if engine == "polars-full":
        frame = build_features(base.scan_tables(data), AS_OF, config).collect(engine="streaming")
    elif engine == "polars-many":
        months = [AS_OF.year * 12 + AS_OF.month - 1 - m for m in range(13)]
        dates = [date(m // 12, m % 12 + 1, 1) for m in months]
        frame = build_features_many(base.scan_tables(data), dates, config).collect()
    else:
        run = {
            "polars-core": base.polars_core,
            "duckdb-core": base.duckdb_core,
            "polars-tx": base.polars_tx,
            "duckdb-tx": base.duckdb_tx,
        }
        frame = run.get(engine, base.pandas_core)(data, AS_OF, config)
    seconds, cpu = time.perf_counter() - start, time.process_time() - cpu_start
    frame.write_parquet(out)
    rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(json.dumps({"seconds": seconds, "cpu": cpu, "rss_mib": rss, "shape": list(frame.shape)}))


def ensure_data(customers: int, path: Path) -> int:
    """Generate the bank once; return its number of transactions."""
    if not (path / "customers.parquet").exists():
        from synthbank import generate

        print(f"generating {customers:,} customers into {path} ...", flush=True)
        generate(customers, 24, 1, path)
    return (
        pl.scan_parquet(sorted((path / "transactions").glob("*.parquet")))
        .select(pl.len())
        .collect()
        .item()
    )


def run_once(engine: str, data: Path, out: Path) -> dict[str, float]:
    cmd = [sys.executable, __file__, "--worker", engine, "--data", str(data), "--out", str(out)]
    done = subprocess.run(cmd, capture_output=True, text=True, check=False)
    if done.returncode != 0:
        raise RuntimeError(f"{engine} failed:\n{done.stderr[-3000:]}")
    return json.loads(done.stdout.strip().splitlines()[-1])


def check_same(outputs: dict[str, Path]) -> list[str]:
    """Compare each engine's output with its reference (`CHECKS`, the reference's columns:
    same customers, the same nulls, every number within 1e-4); return "engine = reference"
    for those that agree."""
    agreed = []
    for reference, others in CHECKS.items():
        if reference not in outputs:
            continue
        base = pl.read_parquet(outputs[reference]).sort("customer_id")
        for engine in others:
            if engine not in outputs:
                continue
            other = pl.read_parquet(outputs[engine]).sort("customer_id").select(base.columns)
            assert base["customer_id"].equals(other["customer_id"]), engine
            for col in base.columns[1:]:
                x, y = base[col].cast(pl.Float64), other[col].cast(pl.Float64)
                assert x.is_null().equals(y.is_null()), f"{engine} differs in nulls of {col}"
                gap = (x - y).abs().max()
                assert gap is None or gap < 1e-4, f"{engine} differs in {col} by {gap}"
            agreed.append(f"{engine} = {reference}")
    return agreed


def run_size(size: str, engines: list[str], repeat: int, pandas_50m: bool) -> dict[str, Any]:
    """Every engine `repeat` times, round-robin; the best run of each, the check, the load."""
    customers, path = SIZES[size]
    n = ensure_data(customers, path)
    rows: list[dict[str, Any]] = []
    engines = list(engines)
    if size == "50m" and "pandas-core" in engines and not pandas_50m:
        engines.remove("pandas-core")
        rows.append({"engine": "pandas-core", "note": "skipped (see --pandas-50m)"})
    with tempfile.TemporaryDirectory() as tmp:
        outputs = {e: Path(tmp) / f"{e}.parquet" for e in engines}
        runs: dict[str, list[dict[str, Any]]] = {e: [] for e in engines}
        for _ in range(repeat):
            for engine in engines:
                runs[engine].append(run_once(engine, path, outputs[engine]))
        for engine in engines:
            best = min(runs[engine], key=lambda r: r["seconds"])
            rows.append(
                {
                    "engine": engine,
                    "seconds": best["seconds"],
                    "mtx_per_s": n / best["seconds"] / 1e6,
                    "cpu": best["cpu"],
                    "rss_mib": max(r["rss_mib"] for r in runs[engine]),
                    "runs": [round(r["seconds"], 2) for r in runs[engine]],
                    "note": "x".join(map(str, best["shape"])),
                }
            )
        agreed = check_same(outputs)
    return {
        "size": size,
        "transactions": n,
        "load": os.getloadavg(),
        "engines": rows,
        "same_numbers": agreed,
    }


def stage_table(size: str) -> dict[str, Any]:
    """The stages of polars-full at `size`, one after the other, in a subprocess."""
    customers, path = SIZES[size]
    n = ensure_data(customers, path)
    with tempfile.TemporaryDirectory() as tmp:
        done = run_once("polars-stages", path, Path(tmp) / "unused.parquet")
    return {"size": size, "transactions": n, "load": os.getloadavg(), **done}


def print_tables(results: list[dict[str, Any]], stages: list[dict[str, Any]]) -> None:
    head = f"{'engine':<12} {'size':>4} {'transactions':>12} {'best s':>7} {'M tx/s':>7}"
    print(f"\n{head} {'CPU s':>6} {'peak RSS MiB':>12}  runs / output")
    for res in results:
        for r in res["engines"]:
            lead = f"{r['engine']:<12} {res['size']:>4} {res['transactions']:>12,}"
            if "seconds" not in r:
                print(f"{lead} {'-':>7} {'-':>7} {'-':>6} {'-':>12}  {r['note']}")
                continue
            print(
                f"{lead} {r['seconds']:>7.2f} {r['mtx_per_s']:>7.2f} {r['cpu']:>6.1f}"
                f" {r['rss_mib']:>12,.0f}  {r['runs']} {r['note']}"
            )
        load = ", ".join(f"{x:.2f}" for x in res["load"])
        agreed = ", ".join(res["same_numbers"]) or "-"
        print(f"  {res['size']}: load average {load}; same numbers: {agreed}")
    for st in stages:
        load = ", ".join(f"{x:.2f}" for x in st["load"])
        print(f"\npolars-full stages, one after the other, {st['size']} (load average {load})")
        print(f"{'stage':<50} {'wall s':>7} {'CPU s':>6}")
        for row in st["stages"]:
            print(f"{row['stage']:<50} {row['seconds']:>7.2f} {row['cpu']:>6.2f}")
        wall = sum(r["seconds"] for r in st["stages"])
        cpu = sum(r["cpu"] for r in st["stages"])
        print(f"{'total':<50} {wall:>7.2f} {cpu:>6.2f}   peak RSS {st['rss_mib']:,.0f} MiB")


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawTextHelpFormatter
    )
    parser.add_argument("--sizes", nargs="+", default=list(SIZES), choices=list(SIZES))
    choices = [*ENGINES, *EXTRA_ENGINES]
    parser.add_argument("--engines", nargs="+", default=list(ENGINES), choices=choices)
    parser.add_argument("--repeat", type=int, default=3, help="runs per engine; the best is shown")
    parser.add_argument("--pandas-50m", action="store_true", help="also run pandas at 50m")
    parser.add_argument("--stages", action="store_true", help="also time polars-full's stages")
    parser.add_argument("--json", action="store_true", help="print one JSON document")
    parser.add_argument("--worker", choices=choices, help=argparse.SUPPRESS)
    parser.add_argument("--data", type=Path, help=argparse.SUPPRESS)
    parser.add_argument("--out", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.worker:
        worker(args.worker, args.data, args.out)
        return
    engines = [e for e in args.engines if e != "polars-stages"]
    results = [run_size(size, engines, args.repeat, args.pandas_50m) for size in args.sizes]
    stages = [stage_table(size) for size in args.sizes] if args.stages else []
    if args.json:
        print(json.dumps({"results": results, "stages": stages}, indent=1))
    else:
        print_tables(results, stages)


if __name__ == "__main__":
    main()
