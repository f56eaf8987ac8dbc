"""One error hierarchy for the whole system.

User mistakes (bad data, bad config, bad arguments) raise a `PropensityError` subclass whose
message names the table, column, product or date; the CLI prints it without a traceback and
exits with code 2. Failures of the environment (disk full, database gone, a lock held too
long) raise `EnvironmentFailure`: one line, exit code 1. Anything else is an internal failure
(exit code 1, one line; the traceback only with `--debug`).

Messages carry the offending value and where it is (table, column, row number, key), never a
whole row nor SQL parameters: cron logs keep stderr, and stderr must not hold personal data.
"""

from __future__ import annotations

from dataclasses import dataclass


class PropensityError(Exception):
    """A mistake the user can fix; printed without a traceback, exit code 2."""

    exit_code = 2


class EnvironmentFailure(PropensityError):
    """The machine or a service failed (disk full, database unreachable mid-run, lock timeout):
    nothing the input could fix, so exit code 1; still one clear line."""

    exit_code = 1


class ConfigError(PropensityError):
    """The configuration file or a command-line option is invalid."""


@dataclass(frozen=True)
class Fault:
    """One table-level fault in the input data."""

    table: str
    column: str | None
    problem: str
    example: str | None = None

    def __str__(self) -> str:
        where = f"{self.table}.{self.column}" if self.column else self.table
        tail = f" (example: {self.example})" if self.example is not None else ""
        return f"{where}: {self.problem}{tail}"


class ContractError(PropensityError):
    """The input tables break the data contract; lists every fault found."""

    def __init__(self, faults: list[Fault]) -> None:
        self.faults = list(faults)
        lines = "\n".join(f"  - {f}" for f in self.faults)
        super().__init__(f"the input data breaks the data contract:\n{lines}")


class RejectedRowsError(PropensityError):
    """Raised in strict mode when any row was quarantined."""


class ModelNotFoundError(PropensityError):
    """No registered model for a product under the requested alias."""
