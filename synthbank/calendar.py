"""The simulated months as numpy datetimes: the M whole months before `end`."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date

import numpy as np

US_PER_DAY = 86_400_000_000
YEAR_DAYS = 365.25


@dataclass(frozen=True)
class Calendar:
    """Month starts (as days and microseconds since the epoch) of the simulated period."""

    end: date
    months: int

    @property
    def month_starts(self) -> np.ndarray:
        """First day of each simulated month, datetime64[D]."""
        end_m = np.datetime64(self.end, "M")
        return (end_m - self.months + np.arange(self.months)).astype("datetime64[D]")

    @property
    def start_day(self) -> int:
        return int(self.month_starts[0].astype(np.int64))

    @property
    def end_day(self) -> int:
        return int(np.datetime64(self.end, "D").astype(np.int64))

    @property
    def start_us(self) -> np.ndarray:
        """Month starts in microseconds since the epoch (int64)."""
        return self.month_starts.astype(np.int64) * US_PER_DAY

    @property
    def days_in_month(self) -> np.ndarray:
        nxt = (np.datetime64(self.end, "M") - self.months + 1 + np.arange(self.months)).astype(
            "datetime64[D]"
        )
        return (nxt - self.month_starts).astype(np.int64)

    @property
    def month_of_year(self) -> np.ndarray:
        """1..12 for each simulated month."""
        return (self.month_starts.astype("datetime64[M]").astype(np.int64) % 12) + 1

    def labels(self) -> list[str]:
        """'YYYY-MM' for each simulated month."""
        return [str(m)[:7] for m in self.month_starts]
