"""`[monitoring]` of propensity.toml: attribution window, drift thresholds, fairness segments."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field, model_validator


class MonitoringConfig(BaseModel):
    """How outcomes are attributed and when drift or selection rates deserve a warning."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    attribution_days: int = Field(
        90, ge=1, description="an opening this many days after the decision counts as converted"
    )
    confidence: float = Field(0.95, gt=0.5, lt=1.0, description="confidence of uplift intervals")
    power: float = Field(0.8, gt=0.5, lt=1.0, description="power of the minimum detectable effect")
    psi_warn: float = Field(0.10, gt=0.0, description="PSI at or above this: warning")
    psi_alert: float = Field(0.25, gt=0.0, description="PSI at or above this: alert")
    fairness_segments: tuple[str, ...] = Field(
        (), description="feature columns to check besides age band (numeric: quartile bands)"
    )
    age_bands: tuple[int, ...] = Field(
        (18, 25, 35, 50, 65), description="lower bounds of the age bands in the fairness check"
    )
    fairness_min_ratio: float = Field(
        0.8, gt=0.0, le=1.0, description="four-fifths rule: warn below this ratio to the best"
    )
    fairness_min_group: int = Field(
        30, ge=1, description="groups with fewer scored customers are shown but never warned on"
    )
    shadow: bool = Field(True, description="score the challenger beside the champion")

    @model_validator(mode="after")
    def _order(self) -> MonitoringConfig:
        if self.psi_alert < self.psi_warn:
            raise ValueError("psi_alert must be at least psi_warn")
        if list(self.age_bands) != sorted(set(self.age_bands)):
            raise ValueError("age_bands must be increasing, e.g. [18, 25, 35, 50, 65]")
        return self
