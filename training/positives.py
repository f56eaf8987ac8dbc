"""Which products have enough positives to train: the floor (skip) and the warning level."""

from __future__ import annotations

from datetime import date

import polars as pl

from training.config import TrainingConfig
from training.dataset import ProductData


def skip_reason(data: ProductData, config: TrainingConfig) -> str | None:
    need = config.min_positives
    for name, split in (("training", data.train), ("validation", data.validation)):
        if split.n_pos < need:
            return f"only {split.n_pos} positives in the {name} snapshots (the floor is {need})"
    if data.test.n_pos == 0 or data.test.n_pos == data.test.n:
        return "the test snapshot has a single class, so the model cannot be evaluated"
    return None


def few_positives(data: ProductData, config: TrainingConfig) -> str | None:
    """A warning for a product trained on fewer positives than `few_positives` in a split."""
    need = config.few_positives
    low = [
        f"{split.n_pos} in {name}"
        for name, split in (("training", data.train), ("validation", data.validation))
        if split.n_pos < need
    ]
    if not low:
        return None
    return f"few positives ({', '.join(low)}; below {need}): trained, but the model is uncertain"


def positives_per_snapshot(labels: pl.DataFrame) -> dict[date, int]:
    """Positive labels per snapshot date, in date order."""
    counts = labels.group_by("as_of").agg(pl.col("label").sum()).sort("as_of")
    return {d: int(n) for d, n in counts.iter_rows()}
