"""Fitting products elsewhere: the backend protocol training needs, and the function it runs.

Training never imports the decision engine, so it states the two methods it uses of
`serving.buckets.Backend` (which `propensity.compute.DaskBackend` and `InProcess` provide)
here. Each fit is an ordinary single-machine LightGBM fit of one product.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, Protocol

import polars as pl

from models.bundle import ModelBundle
from training.config import TrainingConfig
from training.dataset import ProductData
from training.fit import fit_bundle
from training.splits import Snapshots


class FitBackend(Protocol):
    """Where the fits run: `submit` returns a handle, `gather` the results of handles."""

    def submit(self, fn: Callable[..., Any], *args: Any) -> Any: ...
    def gather(self, handles: list[Any]) -> list[Any]: ...


def fit_here(
    product: str, data: ProductData, names: list[str], snapshots: Snapshots, config: TrainingConfig
) -> ModelBundle:
    """`fit_bundle` with LightGBM's `n_jobs` set to this process's share of the cores: its
    polars pool size, which `propensity.compute` sets per Dask worker (so workers fitting
    side by side do not oversubscribe the machine)."""
    lightgbm = config.lightgbm.model_copy(update={"n_jobs": pl.thread_pool_size()})
    mine = config.model_copy(update={"lightgbm": lightgbm})
    return fit_bundle(product, data, names, snapshots, mine)
