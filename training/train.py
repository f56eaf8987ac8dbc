"""Library entry point: train, calibrate, evaluate and register one model per product."""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from datetime import date
from pathlib import Path
from typing import Any

import polars as pl

from features.config import FeatureConfig
from features.consent import consenting_tables
from features.customers import product_names
from features.errors import PropensityError
from features.schemas import DEFAULT_PRODUCTS, Tables
from features.timetravel import as_known_at
from models.bundle import ModelBundle
from models.products import DEFAULT_PRODUCT_SPECS, ProductSpec, resolve_products
from models.registry import resolve_tracking_uri
from training.config import TrainingConfig
from training.dataset import ProductData, feature_columns, fingerprint, product_data
from training.fit import Evaluation, evaluate_product, fit_bundle
from training.labels import build_labels
from training.parallel import FitBackend, fit_here
from training.positives import few_positives, positives_per_snapshot, skip_reason
from training.register import Promotion, log_and_register, set_aliases
from training.sample import Sample, draw_sample, sample_tables
from training.splits import (
    Snapshots,
    TrainingPlan,
    calendar_warnings,
    choose_snapshots,
    data_coverage,
)

log = logging.getLogger(__name__)

Progress = Callable[[str, float], None]
"""Called with a description of the step starting and the share of the work done (0..1)."""


class NoModelTrainedError(PropensityError):
    """Every product was skipped: there is nothing to score with (exit code 2)."""


@dataclass(frozen=True)
class ProductResult:
    """The outcome for one product: trained (metrics, registry version) or skipped (message)."""

    product: str
    trained: bool
    message: str
    metrics: dict[str, float] = field(default_factory=dict)
    baseline: dict[str, float] = field(default_factory=dict)
    oracle_roc_auc: float | None = None
    oracle_at_t_roc_auc: float | None = None
    counts: dict[str, int] = field(default_factory=dict)
    version: str | None = None
    promoted: bool = False
    top_features: list[str] = field(default_factory=list)
    """Features by mean |SHAP value| on the test snapshot, largest first (empty if skipped)."""
    bundle: ModelBundle | None = field(default=None, repr=False)
    positives: dict[date, int] = field(default_factory=dict)
    """Positive labels per snapshot date (empty for a product with no [[products]] entry)."""
    plan: TrainingPlan | None = field(default=None, repr=False)

    def summary(self) -> dict[str, Any]:
        """The product's entry in the metrics JSON file."""
        m = self.metrics
        return {
            "status": "trained" if self.trained else "skipped",
            "message": self.message,
            "roc_auc": m.get("roc_auc"),
            "pr_auc": m.get("pr_auc"),
            "lift_at_10pct": m.get("lift_at_10pct"),
            "capture_at_10pct": m.get("capture_at_10pct"),
            "brier": m.get("brier"),
            "ece": m.get("ece"),
            "n_train": self.counts.get("n_train"),
            "n_test": self.counts.get("n_test"),
            "n_pos_test": self.counts.get("n_pos_test"),
            "baseline_roc_auc": self.baseline.get("roc_auc"),
            "oracle_roc_auc": self.oracle_roc_auc,
            "oracle_at_t_roc_auc": self.oracle_at_t_roc_auc,
            "model_version": self.version,
            "promoted": self.promoted,
            "positives_per_snapshot": {d.isoformat(): n for d, n in self.positives.items()},
        }


def products_in_data(tables: Tables) -> list[str]:
    """Product names in the products table: the defaults first, then the others sorted."""
    found = tables.products.select(pl.col("product").unique()).collect()["product"].to_list()
    return [p for p in DEFAULT_PRODUCTS if p in found] + sorted(
        p for p in found if p not in DEFAULT_PRODUCTS
    )


def build_feature_frame(
    tables: Tables, dates: list[date], feature_config: FeatureConfig | None = None
) -> pl.DataFrame:
    """All snapshot dates' features in one frame (built once, shared by every product)."""
    from features.pipeline import build_features_many  # lands with the feature pipeline

    return build_features_many(tables, dates, feature_config or FeatureConfig()).collect()


def train_products(
    tables: Tables,
    config: TrainingConfig,
    products: list[ProductSpec] | list[str] | None,
    work_dir: Path,
    tracking_uri: str | None = None,
    truth: pl.LazyFrame | None = None,
    progress: Progress | None = None,
    *,
    promote: bool = False,
    feature_config: FeatureConfig | None = None,
    features: pl.DataFrame | None = None,
    as_of: date | None = None,
    configured: tuple[str, ...] | None = None,
    backend: FitBackend | None = None,
) -> dict[str, ProductResult]:
    """Train every product; skipped products get a result with a message, not an exception.

    `products` is the configured list (`[[products]]`; None: the defaults); products found in
    the data without an entry (`configured`: the names with one; default: `products`) are
    reported as skipped, never trained. With `as_of`, the tables
    are cut to what was known then (`features.timetravel.as_known_at`) and no snapshot or
    label window reaches past it. Objectors (and customers without a consent row) are removed
    before features are built. Above `config.sample_customers` consenting customers, only
    the sampled customers' rows are read (`training.sample`). `features` may be given
    precomputed (one row per customer_id and as_of covering all the snapshot dates). With a
    `backend` (e.g. `propensity.compute.DaskBackend`), the products are fitted in parallel
    there, one ordinary LightGBM fit each; features, evaluation and registration stay here.
    Raises `NoModelTrainedError` when every product is skipped.
    """
    report = progress or (lambda _msg, _done: None)
    uri = resolve_tracking_uri(tracking_uri, work_dir)
    known = as_known_at(tables, as_of) if as_of is not None else tables
    consenting = consenting_tables(known)
    coverage = data_coverage(consenting, as_of)
    plan = TrainingPlan(coverage, choose_snapshots(coverage.start, coverage.end, config))
    for warning in coverage.warnings() + calendar_warnings(plan.snapshots, coverage.start, config):
        log.warning(warning)
    snapshots = plan.snapshots
    specs = _specs(products)
    feature_config = feature_config or FeatureConfig()
    sampled, sample = training_sample(consenting, config)
    plan = replace(plan, sample=sample.line())
    for line in plan.lines():
        log.info("plan: %s", line)
    report(f"building features for {len(snapshots.all_dates)} snapshots", 0.0)
    if features is None:
        features = build_feature_frame(
            sampled, snapshots.all_dates, _pinned(consenting, feature_config, sample)
        )
    names = feature_columns(features)
    run = _Run(sampled, features, names, snapshots, config, work_dir, uri, feature_config, sample)
    trained = (
        _train_local(run, specs, truth, promote, report)
        if backend is None
        else _train_on(backend, run, specs, truth, promote, report)
    )
    results: dict[str, ProductResult] = {}
    for name, result in trained.items():
        results[name] = replace(result, plan=plan)
        log.info("%s: %s", name, result.message)
    described = set(configured) if configured is not None else {s.name for s in specs}
    for name in unconfigured_products(consenting, described):
        message = "not trained: no [[products]] entry describes it"
        log.warning("%s: found in the products table but %s", name, message)
        results[name] = ProductResult(name, False, message, plan=plan)
    report("done", 1.0)
    if not any(r.trained for r in results.values()):
        raise NoModelTrainedError(
            "no model could be trained:\n"
            + "\n".join(f"  - {p}: {r.message}" for p, r in results.items())
        )
    return results


def training_sample(consenting: Tables, config: TrainingConfig) -> tuple[Tables, Sample]:
    """The consenting customers' tables cut to the training sample (`training.sample`), and
    the sample: what every product of the run is trained, validated and tested on."""
    ids = consenting.customers.select("customer_id").collect()["customer_id"]
    sample = draw_sample(ids, config.sample_customers)
    return sample_tables(consenting, sample), sample


def _pinned(tables: Tables, config: FeatureConfig, sample: Sample) -> FeatureConfig:
    """A sample builds the `holds_` features of every product in the data (as scoring does
    on the whole bank), not only of the products its customers happen to hold."""
    if sample.ids is None:
        return config
    return config.model_copy(update={"products": product_names(tables.products, config.products)})


def _train_local(
    run: _Run,
    specs: list[ProductSpec],
    truth: pl.LazyFrame | None,
    promote: bool,
    report: Progress,
) -> dict[str, ProductResult]:
    """One product after the other, in this process (one product's data in memory at a time)."""
    out = {}
    for i, spec in enumerate(specs):
        report(f"{spec.name}: training", (i + 0.2) / (len(specs) + 0.2))
        prepared = _prepare(run, spec)
        if isinstance(prepared, ProductResult):
            out[spec.name] = prepared
            continue
        bundle = fit_bundle(spec.name, prepared.data, run.names, run.snapshots, run.config)
        out[spec.name] = _finish(run, spec, prepared, bundle, truth, promote)
    return out


def _train_on(
    backend: FitBackend,
    run: _Run,
    specs: list[ProductSpec],
    truth: pl.LazyFrame | None,
    promote: bool,
    report: Progress,
) -> dict[str, ProductResult]:
    """Every product's fit submitted to `backend` at once; each is evaluated and registered
    here as soon as its model is back, in product order, while the others still fit."""
    prepared = {spec.name: _prepare(run, spec) for spec in specs}
    handles = {
        name: backend.submit(fit_here, name, p.data, run.names, run.snapshots, run.config)
        for name, p in prepared.items()
        if isinstance(p, _Prepared)
    }
    log.info("%d product fit(s) submitted to %s", len(handles), type(backend).__name__)
    out = {}
    for i, spec in enumerate(specs):
        p = prepared.pop(spec.name)
        if isinstance(p, ProductResult):
            out[spec.name] = p
            continue
        report(f"{spec.name}: training", (i + 0.2) / (len(specs) + 0.2))
        bundle = backend.gather([handles.pop(spec.name)])[0]
        out[spec.name] = _finish(run, spec, p, bundle, truth, promote)
    return out


def unconfigured_products(tables: Tables, described: set[str]) -> list[str]:
    """Products in the data that no configured spec describes (reported, not trained)."""
    return [p for p in products_in_data(tables) if p not in described]


def _specs(products: list[ProductSpec] | list[str] | None) -> list[ProductSpec]:
    if products is None:
        return list(DEFAULT_PRODUCT_SPECS)
    return [
        p if isinstance(p, ProductSpec) else resolve_products(DEFAULT_PRODUCT_SPECS, [p])[0]
        for p in products
    ]


@dataclass(frozen=True)
class _Run:
    """What every product of one training run shares."""

    tables: Tables
    features: pl.DataFrame
    names: list[str]
    snapshots: Snapshots
    config: TrainingConfig
    work_dir: Path
    tracking_uri: str
    feature_config: FeatureConfig
    sample: Sample


def _counts(data: ProductData) -> dict[str, int]:
    return {
        "n_train": data.train.n,
        "n_pos_train": data.train.n_pos,
        "n_validation": data.validation.n,
        "n_pos_validation": data.validation.n_pos,
        "n_test": data.test.n,
        "n_pos_test": data.test.n_pos,
    }


@dataclass(frozen=True)
class _Prepared:
    """One product's splits, ready to fit."""

    data: ProductData
    counts: dict[str, int]
    positives: dict[date, int]
    caution: str | None


def _prepare(run: _Run, spec: ProductSpec) -> _Prepared | ProductResult:
    """Labels and splits of one product, or its skipped result (too few positives)."""
    s = run.snapshots
    labels = build_labels(run.tables, spec, s.all_dates, s.horizon_days).collect()
    data = product_data(run.features, labels, s, run.names)
    counts = _counts(data)
    positives = positives_per_snapshot(labels)
    reason = skip_reason(data, run.config)
    if reason is not None:
        log.warning("%s: skipped: %s", spec.name, reason)
        return ProductResult(
            spec.name, False, f"skipped: {reason}", counts=counts, positives=positives
        )
    caution = few_positives(data, run.config)
    if caution is not None:
        log.warning("%s: %s", spec.name, caution)
    return _Prepared(data, counts, positives, caution)


def _finish(
    run: _Run,
    spec: ProductSpec,
    prepared: _Prepared,
    bundle: ModelBundle,
    truth: pl.LazyFrame | None,
    promote: bool,
) -> ProductResult:
    """Evaluate a fitted product on the test snapshot and register it."""
    data, counts, positives, caution = (
        prepared.data,
        prepared.counts,
        prepared.positives,
        prepared.caution,
    )
    bundle = bundle.with_feature_config(run.feature_config)  # checked when it scores
    evaluation = evaluate_product(
        bundle, data, run.config, truth, run.work_dir / "plots" / spec.name
    )
    version, decision = _register(run, spec, bundle, evaluation, data, counts, promote)
    auc = evaluation.model["roc_auc"]
    note = f"; {caution}" if caution else ""
    return ProductResult(
        spec.name,
        True,
        f"version {version}, test ROC-AUC {auc:.3f}; {decision.reason}{note}",
        metrics=evaluation.model,
        baseline=evaluation.baseline,
        oracle_roc_auc=evaluation.oracle_roc_auc,
        oracle_at_t_roc_auc=evaluation.oracle_at_t_roc_auc,
        counts=counts,
        version=version,
        promoted=decision.promoted,
        top_features=evaluation.top_features[:20],
        bundle=bundle.with_version(version),
        positives=positives,
    )


def _register(
    run: _Run,
    spec: ProductSpec,
    bundle: ModelBundle,
    evaluation: Evaluation,
    data: ProductData,
    counts: dict[str, int],
    promote: bool,
) -> tuple[str, Promotion]:
    """Log the MLflow run, register the version, move the aliases."""
    fp = fingerprint(data.train)
    metrics = {**evaluation.metric_log(), **{k: float(v) for k, v in counts.items()}}
    run_id, version = log_and_register(
        bundle,
        params=_params(spec, run.snapshots, run.config, run.names, bundle, run.sample),
        metrics=metrics,
        plots_dir=evaluation.plots_dir,
        fingerprint=fp,
        work_dir=run.work_dir,
        tracking_uri=run.tracking_uri,
        example=data.test.features,
        reference=data.train.features,
    )
    tags = {
        **evaluation.version_tags(),
        "test_as_of": run.snapshots.test.isoformat(),
        "run_id": run_id,
        "data_fingerprint": fp,
    }
    decision = set_aliases(
        spec.name,
        version,
        evaluation.model["roc_auc"],
        test_features=data.test.features,
        y_test=data.test.y,
        promote=promote,
        tracking_uri=run.tracking_uri,
        tags=tags,
    )
    return version, decision


def _params(
    spec: ProductSpec,
    s: Snapshots,
    config: TrainingConfig,
    names: list[str],
    bundle: ModelBundle,
    sample: Sample,
) -> dict[str, Any]:
    return {
        "product": spec.name,
        "min_age": spec.min_age,
        "horizon_days": s.horizon_days,
        "train_as_of": ",".join(d.isoformat() for d in s.train),
        "validation_as_of": s.validation.isoformat(),
        "test_as_of": s.test.isoformat(),
        "calibration": config.calibration,
        "seed": config.seed,
        "sample_customers": config.sample_customers or 0,
        "customers_trained": sample.size,
        "customers_consenting": sample.population,
        "n_features": len(names),
        "feature_schema_hash": bundle.schema_hash,
        "best_iteration": bundle.estimator.best_iteration_,
        **{f"lgbm_{k}": v for k, v in bundle.training["lightgbm"].items()},
    }
