"""The closed loop: outcomes, measured uplift, drift, challenger shadow scores and fairness.

Imports `features`, `models` and `serving.ledger`; only `propensity/` imports this package.
Its tables live in the ledger database under their own SQLAlchemy MetaData (`monitoring.store`).
`monitoring.run_checks` is loaded on first use, so reading `[monitoring]` config stays light.
"""

from __future__ import annotations

from typing import Any

__all__ = ["run_checks"]


def __getattr__(name: str) -> Any:
    if name == "run_checks":
        from monitoring.checks import run_checks

        return run_checks
    raise AttributeError(f"module 'monitoring' has no attribute {name!r}")
