"""The words and numbers of the report: plain labels for gates and metrics, the glossary and
the one number format (thousands separators, fixed decimals, currency)."""

from __future__ import annotations

import html

from serving.reasons import Reason

GATE_LABELS: dict[str, str] = {
    Reason.OBJECTED: "objected to offers based on payments",
    Reason.NO_CONSENT_ROW: "no consent on record",
    Reason.BELOW_THRESHOLD: "score below the campaign minimum",
    Reason.NO_TRIGGER: "no trigger event",
    Reason.SPECIAL_CATEGORY: "special-category data",
    Reason.GLOBAL_CONTROL: "global control group",
    Reason.MINOR: "under age",
    Reason.HOLDS_PRODUCT: "already has the product",
    Reason.DISTRESS: "financial distress (responsible lending)",
    Reason.NO_CHILD_BENEFIT: "no child benefit",
    Reason.COOLDOWN_DECLINE: "declined this product recently",
    Reason.COOLDOWN_PRODUCT: "offered this product recently",
    Reason.CONTACT_CAP: "contacted too often recently",
    Reason.CHANNEL_REFUSED: "no channel the customer allows",
    Reason.PHONE_CAP: "phoned too often recently",
    Reason.CAPACITY: "channel capacity full",
    Reason.LOST_ARBITRATION: "got a better offer in another campaign",
    Reason.CONTROL: "control group (not contacted, for measurement)",
    Reason.SELECTED: "contacted",
}
METRICS = (
    ("roc_auc", "Ranking quality (ROC-AUC)", "num"),
    ("baseline_roc_auc", "Simple baseline (ROC-AUC)", "num"),
    ("oracle_roc_auc", "Best possible (ROC-AUC, synthetic data)", "num"),
    ("lift_at_10pct", "Lift in the top 10%", "num"),
    ("ece", "Calibration error", "num"),
    ("n_test", "Test customers", "int"),
    ("model_version", "Model version", "text"),
)
SEGMENT_LABELS = {"age_band": "age band"}
PLOT_TITLES = {
    "roc": "ROC curve",
    "gain": "Cumulative gain",
    "calibration": "Calibration",
    "importance": "Top drivers",
}
GLOSSARY = (
    (
        "Control group",
        "customers chosen at random from those who would have been contacted, "
        "who are not contacted; comparing them with the contacted shows what the contact adds.",
    ),
    (
        "Uplift",
        "how much more often contacted customers take the product than the control "
        "group: contacted rate / control rate - 1.",
    ),
    (
        "95% interval",
        "the range that holds the true uplift with 95% confidence; when it "
        "includes 0% the effect is not proven.",
    ),
    ("Detectable uplift", "the smallest uplift these group sizes would find 4 times in 5."),
    (
        "Attribution window",
        "days after the run in which an opening counts as a conversion; a "
        "run is final once its window has passed, provisional before.",
    ),
    ("ROC-AUC", "how well the model ranks customers: 0.5 is chance, 1.0 perfect."),
    ("Calibration error", "average gap between predicted and observed rates."),
    (
        "PSI",
        "population stability index: how much a distribution moved since training; "
        "below 0.10 stable, 0.10-0.25 watch, 0.25 and above act.",
    ),
    (
        "Four-fifths rule",
        "a group selected at under 80% of the best-served group's rate is flagged for review.",
    ),
)


def fmt_int(v: object) -> str:
    return "–" if v is None else f"{int(v):,}"  # type: ignore[call-overload]


def fmt_num(v: object, decimals: int = 2) -> str:
    return "–" if v is None else f"{float(v):,.{decimals}f}"  # type: ignore[arg-type]


def fmt_pct(v: float | None, signed: bool = False) -> str:
    return "–" if v is None else f"{v * 100:{'+' if signed else ''},.1f}%"


def fmt_money(v: float | None, currency: str = "EUR") -> str:
    return "–" if v is None else f"{currency} {v:,.0f}"


def esc(v: object) -> str:
    return html.escape(str(v))
