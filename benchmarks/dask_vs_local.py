"""The scoring + selection run (`decide_run`: consent, features, scores, eligibility, policy,
arbitration, ledger, channel files, reasons) with the local scheduler and with a Dask
LocalCluster, on the same generated bank: wall time, peak RSS and whether the outputs agree.

Setup (not timed): the synthetic bank (its transactions are customer-disjoint Parquet parts
of 4,096 customers, so each part is a bucket; kept in --dir and reused) and four small real
champions in a fresh MLflow store. Each mode then runs in a fresh child process; peak RSS is
the largest sum of the RSS of that process and all its children (the Dask workers), sampled
every 50 ms.

usage: python benchmarks/dask_vs_local.py [--customers 20000] [--months 24] [--workers 2]
       [--dir DIR] [--keep]
"""

from __future__ import annotations

import argparse
import contextlib
import json
import logging
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path[:] = [p for p in sys.path if Path(p or ".").resolve() != Path(__file__).resolve().parent]
sys.path.insert(0, str(ROOT))

import numpy as np  # noqa: E402
import polars as pl  # noqa: E402
import psutil  # noqa: E402

PRODUCTS = ("savings", "insurance", "credit_card", "child_savings")


class PeakRss:
    """Largest total RSS of this process and its descendants while running."""

    def __init__(self, every: float = 0.05) -> None:
        self.peak, self.every = 0, every
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._sample, daemon=True)

    def _sample(self) -> None:
        me = psutil.Process()
        while not self._stop.is_set():
            total = 0
            for proc in [me, *me.children(recursive=True)]:
                with contextlib.suppress(psutil.Error):  # a worker that just exited
                    total += proc.memory_info().rss
            self.peak = max(self.peak, total)
            time.sleep(self.every)

    def __enter__(self) -> PeakRss:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()


def setup(root: Path, customers: int, months: int) -> dict[str, str]:
    """Generate the bank and register the champions; returns what the children need."""
    from features.io import load_tables
    from propensity.job import default_as_of
    from synthbank import generate
    from tests.compute.world import train_champions

    bank = root / "bank"
    if not (bank / "_COMPLETE").exists():
        generate(customers=customers, months=months, seed=1, out=bank)
        (bank / "_COMPLETE").write_text("")
    tables = load_tables(bank).tables
    as_of = default_as_of(tables)
    # champions are retrained every time: a kept store may predate a change of the features
    (root / "mlflow.db").unlink(missing_ok=True)
    shutil.rmtree(root / "models", ignore_errors=True)
    uri = f"sqlite:///{root / 'mlflow.db'}"
    train_champions(tables, as_of, uri, root / "models", PRODUCTS)
    return {"data": str(bank), "as_of": as_of.isoformat(), "uri": uri}


def child(mode: str, state: dict[str, str], work: Path, workers: int) -> dict[str, float]:
    """One timed run in this process: load, (start the cluster), decide_run."""
    from datetime import date

    from features.io import load_tables
    from propensity.compute import ComputeConfig, open_compute
    from propensity.config import AppConfig
    from serving.pipeline import decide_run

    times: dict[str, float] = {}
    with PeakRss() as rss:
        t0 = time.perf_counter()
        tables = load_tables(Path(state["data"])).tables
        times["load + validate"] = time.perf_counter() - t0
        config = AppConfig(work_dir=work).engine_config(state["uri"])
        compute = ComputeConfig(scheduler=mode, workers=workers)
        t1 = time.perf_counter()
        with open_compute(compute, Path(state["data"])) as buckets:
            t2 = time.perf_counter()
            if buckets is not None:
                times["start the cluster"] = t2 - t1
            as_of = date.fromisoformat(state["as_of"])
            decide_run(tables, config, as_of=as_of, run_id="bench", compute=buckets)
            times["decide_run (score + select + ledger + files)"] = time.perf_counter() - t2
        times["total"] = time.perf_counter() - t0
    times["peak RSS GB"] = rss.peak / 1e9
    return times


def decisions(work: Path) -> pl.DataFrame:
    import sqlalchemy as sa

    engine = sa.create_engine(f"sqlite:///{work / 'ledger.sqlite'}")
    with engine.connect() as conn:
        frame = pl.read_database("select * from decisions", conn, infer_schema_length=None)
    engine.dispose()
    return frame.sort("customer_id", "campaign_id")


def compare(left: pl.DataFrame, right: pl.DataFrame) -> str:
    """'identical', 'equal to <rtol>' (floats) or what differs."""
    if left.columns != right.columns or left.height != right.height:
        return f"different shapes {left.shape} vs {right.shape}"
    worst = 0.0
    for name in left.columns:
        a, b = left[name], right[name]
        if a.dtype.is_float():
            x, y = a.fill_null(0).to_numpy(), b.fill_null(0).to_numpy()
            if not np.array_equal(a.is_null().to_numpy(), b.is_null().to_numpy()):
                return f"{name}: nulls differ"
            rel = np.abs(x - y) / np.maximum(np.abs(y), 1e-300)
            worst = max(worst, float(rel.max(initial=0.0)))
        elif not a.equals(b):
            return f"{name} differs in {int((a.ne_missing(b)).sum())} row(s)"
    return "identical" if worst == 0 else f"equal (largest relative float difference {worst:.1e})"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--customers", type=int, default=20_000)
    parser.add_argument("--months", type=int, default=24)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--dir", type=Path, default=None, help="keep the bank here (reused)")
    parser.add_argument("--child", choices=["local", "processes"], help=argparse.SUPPRESS)
    parser.add_argument("--state", type=Path, help=argparse.SUPPRESS)
    parser.add_argument("--work", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args()
    logging.basicConfig(level=logging.WARNING)
    logging.getLogger("distributed").setLevel(logging.WARNING)
    if args.child:
        state = json.loads(args.state.read_text())
        out = child(args.child, state, args.work, args.workers)
        (args.work / "times.json").write_text(json.dumps(out))
        return
    root = args.dir or Path(tempfile.mkdtemp(prefix="dask-vs-local-"))
    root.mkdir(parents=True, exist_ok=True)
    t0 = time.perf_counter()
    state = setup(root, args.customers, args.months)
    took = time.perf_counter() - t0
    print(f"setup (bank of {args.customers:,} customers, champions): {took:.1f} s")
    (root / "state.json").write_text(json.dumps(state))
    results = {}
    for mode in ("local", "processes"):
        work = root / f"work-{mode}"
        shutil.rmtree(work, ignore_errors=True)
        work.mkdir()
        cmd = [sys.executable, __file__, "--child", mode, "--state", str(root / "state.json")]
        cmd += ["--work", str(work), "--workers", str(args.workers)]
        subprocess.run(cmd, check=True, cwd=ROOT)
        results[mode] = json.loads((work / "times.json").read_text())
    rows = pl.read_parquet(Path(state["data"]) / "transactions").height
    print(f"\n{args.customers:,} customers, {rows:,} transactions, as of {state['as_of']}")
    print(f"{'stage':48} {'local':>10} {f'dask {args.workers} workers':>18}")
    stages = dict.fromkeys([*results["local"], *results["processes"]])
    for stage in stages:
        cells = [results[m].get(stage) for m in ("local", "processes")]
        unit = "GB" if "GB" in stage else "s"
        text = [f"{c:.2f} {unit}" if c is not None else "-" for c in cells]
        print(f"{stage:48} {text[0]:>10} {text[1]:>18}")
    same = compare(decisions(root / "work-processes"), decisions(root / "work-local"))
    print(f"ledger decisions, Dask vs local: {same}")
    if args.dir is None:
        shutil.rmtree(root, ignore_errors=True)


if __name__ == "__main__":
    main()
