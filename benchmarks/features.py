"""Benchmark: the feature pipeline against pandas and DuckDB on the synthetic bank.

Engines (each run in its own subprocess, so peak RSS is per engine):
  polars-full   `features.pipeline.build_features`: the FULL feature set (212 columns), scan and
                categorisation included, collected with the streaming engine
  polars-core   the project's stages for the core aggregates only
  duckdb-core   the same core aggregates in DuckDB (one pass, FILTER clauses, PIVOT)
  pandas-core   the same core aggregates in straightforward pandas
  polars-many   `build_features_many` for the 13 month starts up to the date (a training set;
                not run by default: --engines polars-many)
The core outputs are checked to hold the same numbers. Data: `propensity generate` with 20k
customers (~11M transactions) and 100k customers (~56M), generated once and reused.

Run: /work/venv/bin/python benchmarks/features.py [--sizes 10m 50m] [--repeat 2]
"""

from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
import tempfile
import time
from datetime import date
from pathlib import Path

import polars as pl

HERE = Path(__file__).resolve().parent
# This file is called features.py: keep its folder off the path so `features` is the package.
sys.path[:] = [p for p in sys.path if Path(p or ".").resolve() != HERE]
SIZES = {
    "10m": (20_000, Path("/tmp/bench-data-10m")),
    "50m": (100_000, Path("/tmp/bench-data-50m")),
}
ENGINES = ("polars-full", "polars-core", "duckdb-core", "pandas-core")
EXTRA_ENGINES = ("polars-many",)
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
    start, cpu_start = time.perf_counter(), time.process_time()
    if engine == "polars-full":
        frame = build_features(base.scan_tables(data), AS_OF, config).collect(engine="streaming")
    elif engine == "polars-many":
        months = [AS_OF.year * 12 + AS_OF.month - 1 - m for m in range(13)]
        dates = [date(m // 12, m % 12 + 1, 1) for m in months]
        frame = build_features_many(base.scan_tables(data), dates, config).collect()
    else:
        run = {"polars-core": base.polars_core, "duckdb-core": base.duckdb_core}
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
    """Compare every core output with polars-core; return the engines that agree."""
    base = pl.read_parquet(outputs["polars-core"]).sort("customer_id")
    agreed = []
    for engine, path in outputs.items():
        if engine in ("polars-core", "polars-full", "polars-many"):
            continue
        other = pl.read_parquet(path).sort("customer_id")
        assert base["customer_id"].equals(other["customer_id"]), engine
        for col in base.columns[1:]:
            gap = (base[col].cast(pl.Float64) - other[col].cast(pl.Float64)).abs().max()
            assert gap is None or gap < 1e-4, f"{engine} differs in {col} by {gap}"
        agreed.append(engine)
    return agreed


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawTextHelpFormatter
    )
    parser.add_argument("--sizes", nargs="+", default=list(SIZES), choices=list(SIZES))
    choices = [*ENGINES, *EXTRA_ENGINES]
    parser.add_argument("--engines", nargs="+", default=list(ENGINES), choices=choices)
    parser.add_argument("--repeat", type=int, default=2, help="runs per engine; the best is shown")
    parser.add_argument("--pandas-50m", action="store_true", help="also run pandas at 50m")
    parser.add_argument("--worker", choices=choices, help=argparse.SUPPRESS)
    parser.add_argument("--data", type=Path, help=argparse.SUPPRESS)
    parser.add_argument("--out", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.worker:
        worker(args.worker, args.data, args.out)
        return
    table = []
    for size in args.sizes:
        customers, path = SIZES[size]
        n = ensure_data(customers, path)
        with tempfile.TemporaryDirectory() as tmp:
            engines = list(args.engines)
            if size == "50m" and "pandas-core" in engines and not args.pandas_50m:
                engines.remove("pandas-core")
                table.append(("pandas-core", n, None, None, None, "skipped (see --pandas-50m)"))
            outputs = {e: Path(tmp) / f"{e}.parquet" for e in engines}
            # Round-robin: a slow spell on a shared machine hits every engine alike.
            runs: dict[str, list[dict[str, float]]] = {e: [] for e in engines}
            for _ in range(args.repeat):
                for engine in engines:
                    runs[engine].append(run_once(engine, path, outputs[engine]))
            for engine in engines:
                best = min(runs[engine], key=lambda r: r["seconds"])
                shape = "x".join(map(str, best["shape"]))
                rss = max(r["rss_mib"] for r in runs[engine])
                table.append((engine, n, best["seconds"], best["cpu"], rss, shape))
                times = [round(r["seconds"], 1) for r in runs[engine]]
                print(f"  {size} {engine}: {times} s", flush=True)
            if "polars-core" in outputs:
                print(f"  {size}: same numbers as polars-core: {check_same(outputs)}", flush=True)
    head = f"{'engine':<12} {'transactions':>13} {'seconds':>8} {'rows/s':>11} {'CPU s':>6}"
    print(f"\n{head} {'peak RSS MiB':>13}  output")
    for engine, n, sec, cpu, rss, note in table:
        if sec is None:
            print(f"{engine:<12} {n:>13,} {'-':>8} {'-':>11} {'-':>6} {'-':>13}  {note}")
        else:
            rate = f"{n / sec:>11,.0f}"
            print(f"{engine:<12} {n:>13,} {sec:>8.1f} {rate} {cpu:>6.1f} {rss:>13,.0f}  {note}")


if __name__ == "__main__":
    main()
