"""A real registry with one trained model: a small generated bank, the real feature pipeline,
real LightGBM and a real MLflow SQLite store (about 10 s to build)."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from training.config import LightGBMParams, TrainingConfig

# Small enough to train in seconds on 800 customers; one thread (the machine is shared).
SMALL_TRAINING = TrainingConfig(
    n_train_snapshots=3,
    min_positives=3,
    lightgbm=LightGBMParams(min_child_samples=20, n_estimators=40, n_jobs=1),
)


@dataclass(frozen=True)
class Registry:
    data_dir: Path
    work_dir: Path
    tracking_uri: str


def small_registry(root: Path, products: tuple[str, ...] = ("savings",)) -> Registry:
    """Generate a bank under `root`, train `products` on it and register them."""
    from synthbank import generate
    from training.run import train_from_dir

    data = root / "bank"
    generate(customers=800, months=18, seed=1, out=data)
    work = root / "work"
    uri = f"sqlite:///{work / 'mlflow.db'}"
    results = train_from_dir(
        data, SMALL_TRAINING, work_dir=work, products=list(products), tracking_uri=uri
    )
    assert all(r.trained for r in results.values()), {p: r.message for p, r in results.items()}
    return Registry(data, work, uri)
