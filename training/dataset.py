"""Assemble one product's train / validation / test matrices from features and labels."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from datetime import date

import numpy as np
import polars as pl

from models.bundle import ID_COLUMNS
from training.splits import Snapshots


@dataclass(frozen=True)
class Split:
    """One split: ids (customer_id, as_of), the feature frame and the labels, in one order."""

    ids: pl.DataFrame
    features: pl.DataFrame
    y: np.ndarray

    @property
    def n(self) -> int:
        return len(self.y)

    @property
    def n_pos(self) -> int:
        return int(self.y.sum())


@dataclass(frozen=True)
class ProductData:
    train: Split
    validation: Split
    test: Split


def feature_columns(features: pl.DataFrame | pl.LazyFrame) -> list[str]:
    """The model inputs: every numeric or boolean column except the ids, in frame order."""
    schema = features.collect_schema() if isinstance(features, pl.LazyFrame) else features.schema
    return [
        name
        for name, dtype in schema.items()
        if name not in ID_COLUMNS and (dtype.is_numeric() or dtype == pl.Boolean)
    ]


def _split(frame: pl.DataFrame, dates: list[date], names: list[str]) -> Split:
    part = frame.filter(pl.col("as_of").is_in(dates))
    return Split(
        ids=part.select(ID_COLUMNS),
        features=part.select(names),
        y=part["label"].to_numpy().astype(np.int64),
    )


def product_data(
    features: pl.DataFrame, labels: pl.DataFrame, snapshots: Snapshots, names: list[str]
) -> ProductData:
    """Inner join of labels (the product's population) with the features, split by date."""
    frame = labels.join(features, on=list(ID_COLUMNS), how="inner").sort(ID_COLUMNS)
    return ProductData(
        train=_split(frame, list(snapshots.train), names),
        validation=_split(frame, [snapshots.validation], names),
        test=_split(frame, [snapshots.test], names),
    )


def fingerprint(split: Split) -> str:
    """A fingerprint of the training rows (ids, features, labels, in order) for the MLflow run
    (row hashes are polars' own: comparable between runs with the same polars version)."""
    frame = pl.concat([split.ids, split.features], how="horizontal").with_columns(
        label=pl.Series(split.y)
    )
    digest = hashlib.sha256(frame.hash_rows(seed=0).to_numpy().tobytes()).hexdigest()[:16]
    return f"{split.n}x{frame.width}-{digest}"
