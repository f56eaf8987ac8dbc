"""The objection gate as serving sees it: `features.consent.profilable`, the one rule.

Customers who objected, or who have no consent row at all (safe default), are removed from
every table *before* features are built, so their payments never reach a model for marketing.
"""

from __future__ import annotations

from features.consent import Profilable as ConsentGate
from features.consent import profilable as consent_gate

__all__ = ["ConsentGate", "consent_gate"]
