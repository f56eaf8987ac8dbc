"""The one configuration file, `propensity.toml`: typed, frozen and strict.

Each part owns its section model (`features.config`, `training.config`, `serving.config`,
`models.products`); this module only composes them, reads TOML and names the offending key
when something is wrong. Every CLI flag overrides the file through `AppConfig.override`.
"""

from __future__ import annotations

import tomllib
from datetime import date
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from features.config import FeatureConfig, InputOptions
from features.config_errors import config_error
from features.errors import ConfigError
from features.ids import date_problem, name_problem
from models.products import DEFAULT_PRODUCT_SPECS, ProductSpec
from monitoring.config import MonitoringConfig
from propensity.compute import ComputeConfig
from serving.config import DEFAULT_CAMPAIGNS, Campaign, ContactPolicy, ServingConfig, load_campaigns
from serving.online_config import OnlineConfig
from serving.pipeline import EngineConfig
from training.config import TrainingConfig

SHARED_IN_SERVING = ("policy", "products", "ledger_url", "distress")


class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class DataConfig(InputOptions):
    """Where the input tables are (no path: the synthetic bank) and how to read them."""

    path: Path | None = Field(None, description="data directory; empty: the synthetic bank")


class SyntheticConfig(Strict):
    """The built-in synthetic bank, generated once into the work directory and reused."""

    customers: int = Field(20_000, ge=50, description="number of customers")
    months: int = Field(24, ge=18, le=120, description="months of history")
    seed: int = Field(7, description="random seed (same seed, same bank)")
    end: date = Field(date(2026, 11, 1), description="first day after the simulated period")


class RunSettings(Strict):
    """The selection run of `propensity run`."""

    as_of: date | None = Field(None, description="run date; empty: the day after the data ends")
    run_id: str | None = Field(None, description="ledger run id; empty: run-<as_of>")
    replace: bool = Field(False, description="replace an earlier run with the same id")
    promote: bool = Field(False, description="make the new models champion regardless")
    retrain: bool = Field(
        True,
        description="train and register the models before scoring; false: score with the "
        "current champions only (the common nightly run; a product without one is skipped)",
    )

    @field_validator("run_id")
    @classmethod
    def _run_id(cls, value: str | None) -> str | None:
        problem = name_problem(value) if value is not None else None
        if problem is not None:
            raise ValueError(f"a run id {problem} (example: run-2026-11-02)")
        return value

    @field_validator("as_of")
    @classmethod
    def _as_of(cls, value: date | None) -> date | None:
        problem = date_problem(value) if value is not None else None
        if problem is not None:
            raise ValueError(f"{value} {problem}")
        return value


class LedgerConfig(Strict):
    url: str | None = Field(
        None, description="SQLAlchemy URL; empty: an SQLite file in the work directory"
    )


class MlflowConfig(Strict):
    tracking_uri: str | None = Field(
        None, description="empty: MLFLOW_TRACKING_URI or an SQLite store in the work directory"
    )


class AppConfig(Strict):
    """Everything `propensity run` needs, with defaults that run the synthetic bank."""

    work_dir: Path = Field(Path("propensity-work"), description="all outputs go here")
    data: DataConfig = DataConfig()
    synthetic: SyntheticConfig = SyntheticConfig()
    run: RunSettings = RunSettings()
    products: tuple[ProductSpec, ...] = DEFAULT_PRODUCT_SPECS
    features: FeatureConfig = FeatureConfig()
    training: TrainingConfig = TrainingConfig()
    policy: ContactPolicy = ContactPolicy()
    serving: ServingConfig = ServingConfig()
    campaigns: tuple[Campaign, ...] = Field(default_factory=lambda: tuple(default_campaigns()))
    ledger: LedgerConfig = LedgerConfig()
    mlflow: MlflowConfig = MlflowConfig()
    monitoring: MonitoringConfig = MonitoringConfig()
    compute: ComputeConfig = ComputeConfig()
    online: OnlineConfig = OnlineConfig()

    @model_validator(mode="after")
    def _campaigns_name_products(self) -> AppConfig:
        """A campaign for a product without a [[products]] entry is a mistake, caught at load."""
        known = {p.name for p in self.products}
        for c in self.campaigns:
            if c.product not in known:
                raise ValueError(
                    f"campaigns[{c.id}].product {c.product!r} has no [[products]] entry "
                    f"(known: {sorted(known)}); add [[products]] name = {c.product!r}"
                )
        ids = [c.id for c in self.campaigns]
        dupes = sorted({i for i in ids if ids.count(i) > 1})
        if dupes:
            raise ValueError(f"campaign id(s) used twice: {dupes}")
        return self

    @field_validator("serving", mode="before")
    @classmethod
    def _no_duplicates(cls, value: Any) -> Any:
        if isinstance(value, dict):
            dup = [k for k in SHARED_IN_SERVING if k in value]
            if dup:
                raise ValueError(
                    f"set {dup} at the top level ([policy], [[products]], [ledger], "
                    "[features.distress])"
                )
        return value

    def serving_config(self) -> ServingConfig:
        """The serving section with the shared policy, products, ledger and distress rules."""
        return self.serving.model_copy(
            update={
                "policy": self.policy,
                "products": self.products,
                "ledger_url": self.ledger.url,
                "distress": self.features.distress,
            }
        )

    def engine_config(self, tracking_uri: str, alias: str = "champion") -> EngineConfig:
        """The decision engine's view of this config (`serving.pipeline`)."""
        return EngineConfig(
            serving=self.serving_config(),
            campaigns=self.campaigns,
            features=self.features,
            work_dir=self.work_dir,
            tracking_uri=tracking_uri,
            alias=alias,
        )

    def with_campaigns_file(self, path: Path | None) -> AppConfig:
        """A copy whose campaigns come from a file of `[[campaigns]]` (checked like the rest)."""
        if path is None:
            return self
        campaigns = [c.model_dump() for c in load_campaigns(path)]
        return self.override(campaigns=campaigns)

    def override(self, **changes: Any) -> AppConfig:
        """A copy with dotted-key overrides from CLI flags; None values are ignored."""
        data = self.model_dump()
        for shared in SHARED_IN_SERVING:
            data["serving"].pop(shared, None)
        for key, value in changes.items():
            if value is None:
                continue
            node = data
            *parents, leaf = key.split(".")
            for p in parents:
                node = node[p]
            node[leaf] = value
        return validate_config(data, "command line")


def default_campaigns() -> list[Campaign]:
    """The campaigns shipped with the package (one per default product, four channels)."""
    return load_campaigns(DEFAULT_CAMPAIGNS)


def validate_config(data: dict[str, Any], where: str) -> AppConfig:
    try:
        return AppConfig.model_validate(data)
    except ValidationError as err:
        raise config_error(err, where) from None


def load_config(path: Path | None) -> AppConfig:
    """Read `path` (TOML); None or a missing default file gives the defaults."""
    if path is None:
        return AppConfig()
    try:
        with Path(path).open("rb") as fh:
            data = tomllib.load(fh)
    except FileNotFoundError:
        raise ConfigError(f"config file not found: {path}") from None
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{path}: not valid TOML: {exc}") from None
    return validate_config(data, str(path))
