"""The closed loop: outcomes, measured uplift, drift, challenger shadow scores and fairness.

Imports `features`, `models` and `serving.ledger`; only `propensity/` imports this package.
Its tables live in the ledger database under their own SQLAlchemy MetaData (`monitoring.store`).
"""

from monitoring.checks import run_checks

__all__ = ["run_checks"]
