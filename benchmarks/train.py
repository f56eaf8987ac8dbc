"""Benchmark: train the four default products on a generated 50k-customer, 30-month bank.

    python benchmarks/train.py [--data /tmp/bench-train-50k] [--work-dir /tmp/bench-train-work]

Generates the bank once (`propensity generate --customers 50000 --months 30 --seed 7`) and
reuses it. Prints the test metrics per product, the wall time of each stage (features
included) and the peak RSS. Targets: ROC-AUC >= baseline + 0.02 and >= oracle - 0.03 for every
product; all four products within 5 minutes on the 2-core machine.
"""

from __future__ import annotations

import argparse
import logging
import resource
import shutil
import sys
import time
from pathlib import Path

# `python benchmarks/train.py` puts benchmarks/ first on sys.path, where sibling scripts
# (benchmarks/features.py) would shadow the packages of the same name.
_HERE = Path(__file__).resolve().parent
sys.path[:] = [p for p in sys.path if Path(p or ".").resolve() != _HERE]

COLUMNS = (
    "roc_auc",
    "baseline_roc_auc",
    "oracle_roc_auc",
    "oracle_at_t_roc_auc",
    "pr_auc",
    "lift_at_10pct",
    "brier",
    "ece",
    "n_train",
    "n_test",
)


def ensure_bank(data: Path) -> None:
    """Generate the benchmark bank unless it is already there."""
    if (data / "customers.parquet").exists():
        return
    from synthbank import generate

    print(f"generating the bank into {data} ...", flush=True)
    generate(customers=50_000, months=30, seed=7, out=data)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, default=Path("/tmp/bench-train-50k"))
    parser.add_argument("--work-dir", type=Path, default=Path("/tmp/bench-train-work"))
    args = parser.parse_args()
    logging.basicConfig(level=logging.WARNING)
    ensure_bank(args.data)
    shutil.rmtree(args.work_dir, ignore_errors=True)

    from features.schemas import DEFAULT_PRODUCTS
    from training.config import TrainingConfig
    from training.run import train_from_dir

    start = time.perf_counter()
    stages: list[tuple[str, float]] = []

    def progress(message: str, _done: float) -> None:
        stages.append((message, time.perf_counter() - start))
        print(f"[{stages[-1][1]:7.1f} s] {message}", flush=True)

    results = train_from_dir(
        args.data,
        TrainingConfig(),
        work_dir=args.work_dir,
        products=list(DEFAULT_PRODUCTS),
        progress=progress,
    )
    wall = time.perf_counter() - start
    peak_mib = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print()
    print(f"{'product':14s}" + "".join(f"{c:>20s}" for c in COLUMNS) + "  targets")
    for product, result in results.items():
        s = result.summary()
        cells = "".join(
            f"{s[c]:>20.4f}" if isinstance(s[c], float) else f"{s[c]!s:>20s}" for c in COLUMNS
        )
        print(f"{product:14s}{cells}  {_targets(s)}")
    print()
    print("stage timings (s):")
    for (message, at), (_, nxt) in zip(stages, [*stages[1:], ("end", wall)], strict=True):
        print(f"  {message:50s} {nxt - at:8.1f}")
    print(f"wall time: {wall:.1f} s   peak RSS: {peak_mib:,.0f} MiB")


def _targets(s: dict) -> str:
    if s["roc_auc"] is None:
        return s["message"]
    base_ok = s["roc_auc"] >= s["baseline_roc_auc"] + 0.02
    marks = [f"baseline+0.02 {'ok' if base_ok else 'MISS'}"]
    for key, label in (("oracle_roc_auc", "oracle"), ("oracle_at_t_roc_auc", "oracle@T")):
        if s[key] is not None:
            marks.append(f"{label}-0.03 {'ok' if s['roc_auc'] >= s[key] - 0.03 else 'MISS'}")
    return "; ".join(marks)


if __name__ == "__main__":
    main()
