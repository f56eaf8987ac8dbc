"""Access to what the ledger holds about a customer (`propensity explain`).

Its home is `serving.access`; this module only re-exports it for older imports.
"""

from __future__ import annotations

from serving.access import customer_record, explain_customer

__all__ = ["customer_record", "explain_customer"]
