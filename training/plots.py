"""Evaluation plots as PNG (matplotlib's object API with the Agg canvas; no pyplot state)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure
from sklearn.calibration import calibration_curve
from sklearn.metrics import roc_curve

TOP_FEATURES = 20


def _save(fig: Figure, path: Path) -> Path:
    FigureCanvasAgg(fig)
    fig.tight_layout()
    fig.savefig(path, dpi=90)
    return path


def plot_roc(y: np.ndarray, scores: dict[str, np.ndarray], title: str, path: Path) -> Path:
    fig = Figure(figsize=(5, 5))
    ax = fig.add_subplot()
    for name, p in scores.items():
        fpr, tpr, _ = roc_curve(y, p)
        ax.plot(fpr, tpr, label=name)
    ax.plot([0, 1], [0, 1], color="grey", linestyle=":")
    ax.set(xlabel="false positive rate", ylabel="true positive rate", title=title)
    ax.legend(loc="lower right")
    return _save(fig, path)


def plot_gain(y: np.ndarray, scores: dict[str, np.ndarray], title: str, path: Path) -> Path:
    """Cumulative gain: share of all openers reached when contacting the top x% by score."""
    fig = Figure(figsize=(5, 5))
    ax = fig.add_subplot()
    y = np.asarray(y, dtype=np.float64)
    share = np.arange(1, len(y) + 1) / len(y)
    for name, p in scores.items():
        gain = np.cumsum(y[np.argsort(-np.asarray(p), kind="stable")]) / max(y.sum(), 1)
        ax.plot(share, gain, label=name)
    ax.plot([0, 1], [0, 1], color="grey", linestyle=":", label="random")
    ax.set(xlabel="share of customers contacted", ylabel="share of openers reached", title=title)
    ax.legend(loc="lower right")
    return _save(fig, path)


def plot_calibration(y: np.ndarray, scores: dict[str, np.ndarray], title: str, path: Path) -> Path:
    fig = Figure(figsize=(5, 5))
    ax = fig.add_subplot()
    top = 0.0
    for name, p in scores.items():
        frac_pos, mean_pred = calibration_curve(y, p, n_bins=10, strategy="quantile")
        ax.plot(mean_pred, frac_pos, marker="o", label=name)
        top = max(top, float(mean_pred.max()), float(frac_pos.max()))
    ax.plot([0, top], [0, top], color="grey", linestyle=":")
    ax.set(xlabel="mean predicted probability", ylabel="observed rate", title=title)
    ax.legend(loc="upper left")
    return _save(fig, path)


def plot_importance(importance: dict[str, float], title: str, path: Path) -> Path:
    """Mean |SHAP| per feature (log-odds), the top features."""
    items = sorted(importance.items(), key=lambda kv: kv[1], reverse=True)[:TOP_FEATURES]
    fig = Figure(figsize=(6, 0.3 * len(items) + 1.2))
    ax = fig.add_subplot()
    ax.barh([k for k, _ in reversed(items)], [v for _, v in reversed(items)])
    ax.set(xlabel="mean |SHAP value| (log-odds)", title=title)
    return _save(fig, path)


def write_plots(
    out_dir: Path,
    product: str,
    y: np.ndarray,
    scores: dict[str, np.ndarray],
    importance: dict[str, float],
) -> list[Path]:
    """ROC, cumulative gain, calibration and importance plots for one product."""
    out_dir.mkdir(parents=True, exist_ok=True)
    return [
        plot_roc(y, scores, f"ROC — {product}", out_dir / "roc.png"),
        plot_gain(y, scores, f"Cumulative gain — {product}", out_dir / "gain.png"),
        plot_calibration(y, scores, f"Calibration — {product}", out_dir / "calibration.png"),
        plot_importance(importance, f"Feature importance — {product}", out_dir / "importance.png"),
    ]
