"""Customer buckets: the decision engine's per-customer work, one bucket of customers at a time.

Everything before arbitration depends on one customer's rows only (consent gate, features,
scores, responsible-lending flags), so it can run per bucket of customers, in this process or
on a Dask worker, with the unchanged code of `serving.consent`, `features.pipeline` and
`serving.scoring`. Arbitration, capacity and the ledger write are global: they run once, in
the calling process, through `serving.batch.run_selection` (see `serving.pipeline.decide_run`).

A bucket is one Parquet part of the transactions directory (or `parts_per_bucket` consecutive
parts) when the parts are customer-disjoint; otherwise customers are re-bucketed by
`bucket_of`, a hash defined by the project (not by a dataframe library), so a bucket holds the
same customers on every machine and after every upgrade.
"""

from __future__ import annotations

import copy
import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import date
from pathlib import Path
from typing import Any, Protocol

import polars as pl

from features.config import FeatureConfig
from features.customers import product_names
from features.errors import ContractError
from features.hashing import bucket_of
from features.io import find_table, scan_table
from features.schemas import TRANSACTIONS, Tables
from features.timetravel import as_known_at
from features.validate import RowContext, cast_to_contract, rejected
from models.bundle import ModelBundle
from serving.config import ServingConfig
from serving.consent import consent_gate
from serving.eligibility import per_customer
from serving.scoring import REASONS_SCHEMA, SCORE_SCHEMA, explain_features, score_features

log = logging.getLogger(__name__)

SMALL_TABLES = ("customers", "products", "consents", "contacts")


class Backend(Protocol):
    """Where bucket functions run: `InProcess` here, or a Dask client (`propensity.compute`).

    Handles are whatever the backend returns (values in process, futures on Dask); a handle
    may be passed as an argument to `submit`, so results can stay where they were computed.
    """

    def submit(self, fn: Callable[..., Any], *args: Any) -> Any: ...
    def scatter(self, value: Any) -> Any: ...
    def gather(self, handles: list[Any]) -> list[Any]: ...


class InProcess:
    """Runs every bucket function at once, in this process (bucket by bucket)."""

    def submit(self, fn: Callable[..., Any], *args: Any) -> Any:
        return fn(*args)

    def scatter(self, value: Any) -> Any:
        return value

    def gather(self, handles: list[Any]) -> list[Any]:
        return list(handles)


@dataclass(frozen=True)
class Bucket:
    """One bucket's input: where its transactions are and its rows of the small tables.

    `by_id`: the source also holds other customers' rows, so they are filtered by id.
    """

    index: int
    sources: tuple[Path, ...]  # Parquet parts (or one table path) holding its transactions
    by_id: bool
    small: dict[str, pl.DataFrame]

    @property
    def source(self) -> Path:
        """The first source (one part, or the whole table when re-bucketed by hash)."""
        return self.sources[0]


def part_customers(part: Path) -> pl.Series:
    """The distinct customer ids of one Parquet part (runs where the part is)."""
    ids = pl.scan_parquet(part).select(pl.col("customer_id").cast(pl.String).unique())
    return ids.collect()["customer_id"]


def _assignment(
    data_dir: Path, customers: pl.Series, backend: Backend, n_hash: int, per_bucket: int = 1
) -> tuple[list[tuple[Path, ...]], pl.DataFrame, bool]:
    """(sources, customer_id -> _bucket, by_id): `per_bucket` consecutive parts a bucket when
    the parts are customer-disjoint."""
    path = find_table(data_dir, "transactions")
    parts = sorted(path.glob("*.parquet")) if path is not None and path.is_dir() else []
    if len(parts) > 1:
        found = backend.gather([backend.submit(part_customers, p) for p in parts])
        per = max(per_bucket, 1)
        owner = pl.concat(
            [pl.DataFrame({"customer_id": ids, "_bucket": i // per}) for i, ids in enumerate(found)]
        )
        if owner["customer_id"].is_unique().all():
            groups = [tuple(parts[i : i + per]) for i in range(0, len(parts), per)]
            rest = customers.filter(~customers.is_in(owner["customer_id"].implode()))
            spread = pl.DataFrame({"customer_id": rest, "_bucket": bucket_of(rest, len(groups))})
            log.info(
                "%d customer-disjoint transaction parts: %d bucket(s) of up to %d part(s)",
                len(parts),
                len(groups),
                per,
            )
            return groups, pl.concat([owner, spread.cast(owner.schema)]), False
        log.warning("transaction parts share customers: re-bucketing by customer hash")
    n = max(n_hash, 1)
    frame = pl.DataFrame({"customer_id": customers, "_bucket": bucket_of(customers, n)})
    return [(path or data_dir,)] * n, frame, True


def plan_buckets(
    tables: Tables, data_dir: Path, backend: Backend, n_hash: int = 1, parts_per_bucket: int = 1
) -> list[Bucket]:
    """The buckets of `data_dir`'s customers (`tables`: the validated tables loaded from it).

    The small tables are read here once and split by bucket; each bucket reads its own
    transactions where it runs. `n_hash`: number of buckets when re-bucketing by hash;
    `parts_per_bucket`: customer-disjoint parts grouped into one bucket.
    """
    small = {name: getattr(tables, name).collect() for name in SMALL_TABLES}
    ids = small["customers"]["customer_id"].unique().sort()
    sources, assign, by_id = _assignment(Path(data_dir), ids, backend, n_hash, parts_per_bucket)
    split = {
        name: frame.join(assign, "customer_id").partition_by("_bucket", as_dict=True)
        for name, frame in small.items()
    }
    buckets = []
    for i, source in enumerate(sources):
        parts = {
            name: split[name][(i,)].drop("_bucket") if (i,) in split[name] else frame.clear()
            for name, frame in small.items()
        }
        buckets.append(Bucket(i, source, by_id, parts))
    # a bucket without customers has nothing to do; one is kept so empty banks keep their schema
    return [b for b in buckets if b.small["customers"].height] or buckets[:1]


def bucket_tables(bucket: Bucket, today: date) -> Tables:
    """The bucket's tables, with the loader's contract casts and row rules (`features.io`)."""
    raw = (
        pl.scan_parquet(list(bucket.sources))
        if len(bucket.sources) > 1
        else scan_table(bucket.source, "transactions")
    )
    cast, faults = cast_to_contract(raw, TRANSACTIONS)
    if faults:
        raise ContractError(faults)
    ids = bucket.small["customers"]["customer_id"]
    rows = cast.filter(~rejected("transactions", RowContext(today, ids)))
    if bucket.by_id:
        rows = rows.filter(pl.col("customer_id").is_in(ids.implode()))
    frames = {name: bucket.small[name].lazy() for name in SMALL_TABLES}
    return Tables(transactions=rows, **frames)


@dataclass
class BucketResult:
    """What one bucket computed; the features stay where they were built (for reasons)."""

    features: pl.DataFrame
    scores: pl.DataFrame
    distress: pl.DataFrame
    facts: pl.DataFrame


def with_threads(bundles: dict[str, ModelBundle], threads: int) -> dict[str, ModelBundle]:
    """Copies whose LightGBM uses `threads` (the polars pool of this process), if different."""
    if all(b.estimator.model_.n_jobs == threads for b in bundles.values()):
        return bundles
    out = {}
    for product, bundle in bundles.items():
        mine = copy.deepcopy(bundle)
        mine.estimator.model_.set_params(n_jobs=threads)
        out[product] = mine
    return out


def score_bucket(
    bucket: Bucket,
    today: date,
    as_of: date,
    feature_config: FeatureConfig,
    serving_config: ServingConfig,
    bundles: dict[str, ModelBundle],
) -> BucketResult:
    """Consent gate, features, scores, distress flags and eligibility facts of one bucket
    (objectors never reach a feature). LightGBM gets as many threads as polars has here."""
    gate = consent_gate(as_known_at(bucket_tables(bucket, today), as_of))
    found = per_customer(gate.tables, as_of, serving_config, feature_config)
    local = with_threads(bundles, pl.thread_pool_size())
    features = found.features
    scores = score_features(features, local) if bundles else pl.DataFrame(schema=SCORE_SCHEMA)
    log.info("bucket %d: %d customer(s) scored", bucket.index, features.height)
    return BucketResult(features, scores, found.distress, found.facts)


def _part(result: BucketResult, name: str) -> pl.DataFrame:
    """One frame of a bucket's result (runs where the result is: only that frame travels)."""
    frame: pl.DataFrame = getattr(result, name)
    return frame


def _height(result: BucketResult, name: str) -> int:
    """Rows of one frame of a bucket's result (only the count travels)."""
    return _part(result, name).height


def explain_bucket(
    result: BucketResult,
    bundles: dict[str, ModelBundle],
    pairs: pl.DataFrame,
    as_of: date,
    k: int,
    feature_config: FeatureConfig | None = None,
) -> pl.DataFrame:
    """Reasons for the bucket's chosen pairs, from the features built there."""
    local = with_threads(bundles, pl.thread_pool_size())
    return explain_features(result.features, local, pairs, as_of, k, feature_config)


@dataclass
class BucketScored:
    """Scores, distress flags and facts of every bucket, gathered; the features stay there."""

    backend: Backend
    buckets: list[Bucket]
    results: list[Any]  # handles of BucketResult
    bundles: Any  # handle of the bundles
    scores: pl.DataFrame
    distress: pl.DataFrame
    facts: pl.DataFrame
    owner: pl.DataFrame = field(repr=False)  # customer_id -> _bucket (position in results)

    def features(self) -> pl.DataFrame:
        """Every bucket's features in one frame, in customer order (small banks and tests)."""
        handles = [self.backend.submit(_part, r, "features") for r in self.results]
        parts = self.backend.gather(handles)
        return pl.concat(parts).sort("customer_id")

    def customers(self) -> int:
        """How many customers got features, over all buckets (the features stay there)."""
        handles = [self.backend.submit(_height, r, "features") for r in self.results]
        return sum(self.backend.gather(handles))

    def explainer(
        self, as_of: date, k: int, feature_config: FeatureConfig | None = None
    ) -> Callable[[pl.DataFrame], pl.DataFrame]:
        """An `Explainer` that sends each chosen pair to the bucket holding its features."""

        def explain(pairs: pl.DataFrame) -> pl.DataFrame:
            routed = pairs.join(self.owner, "customer_id").partition_by("_bucket", as_dict=True)
            handles = [
                self.backend.submit(
                    explain_bucket,
                    self.results[i],
                    self.bundles,
                    rows.drop("_bucket"),
                    as_of,
                    k,
                    feature_config,
                )
                for (i,), rows in sorted(routed.items())
            ]
            parts = self.backend.gather(handles)
            return pl.concat(parts) if parts else pl.DataFrame(schema=REASONS_SCHEMA)

        return explain


@dataclass(frozen=True)
class Buckets:
    """The compute choice handed to `serving.pipeline.decide_run`: run the per-customer work
    bucket by bucket on `backend`, reading the transactions of `data_dir`."""

    backend: Backend
    data_dir: Path
    n_hash: int = 1
    today: date = field(default_factory=date.today)
    parts_per_bucket: int = 1

    def score(
        self,
        tables: Tables,
        as_of: date,
        feature_config: FeatureConfig,
        serving_config: ServingConfig,
        bundles: dict[str, ModelBundle],
    ) -> BucketScored:
        """Score every bucket; only scores, distress flags and facts come back here."""
        buckets = plan_buckets(
            tables, self.data_dir, self.backend, self.n_hash, self.parts_per_bucket
        )
        # products for holds_ features come from all the data, not from one bucket's rows
        names = product_names(tables.products, feature_config.products)
        pinned = feature_config.model_copy(update={"products": names})
        shared = self.backend.scatter(bundles)
        results = [
            self.backend.submit(score_bucket, b, self.today, as_of, pinned, serving_config, shared)
            for b in buckets
        ]
        scores, distress, facts = (
            self.backend.gather([self.backend.submit(_part, r, name) for r in results])
            for name in ("scores", "distress", "facts")
        )
        owner = pl.concat(  # customer -> position in `results`
            [
                b.small["customers"].select("customer_id", _bucket=pl.lit(pos, pl.Int64))
                for pos, b in enumerate(buckets)
            ]
        )
        return BucketScored(
            self.backend,
            buckets,
            results,
            shared,
            _in_product_order(scores, list(bundles)),
            pl.concat(distress).sort("customer_id"),
            pl.concat(facts).sort("customer_id"),
            owner,
        )


def _in_product_order(parts: list[pl.DataFrame], products: list[str]) -> pl.DataFrame:
    """Scores in the order `serving.scoring.score_features` gives: product, then customer."""
    if not parts:
        return pl.DataFrame(schema=SCORE_SCHEMA)
    scores = pl.concat(parts)
    order = pl.DataFrame({"product": products, "_p": range(len(products))})
    return scores.join(order, "product").sort("_p", "customer_id").drop("_p")
