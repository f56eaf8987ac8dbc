"""One way to turn a pydantic ValidationError into the message a user reads (exit 2)."""

from __future__ import annotations

from pydantic import ValidationError

from features.errors import ConfigError


def config_error(err: ValidationError, where: str) -> ConfigError:
    """A ConfigError naming each offending key (`where: section.key: problem`)."""
    parts = []
    for e in err.errors():
        key = ".".join(str(p) for p in e["loc"])
        msg = "unknown key" if e["type"] == "extra_forbidden" else e["msg"]
        msg = msg.removeprefix("Value error, ")
        parts.append(f"{where}.{key}: {msg}" if key else f"{where}: {msg}")
    return ConfigError("invalid configuration:\n  " + "\n  ".join(parts))
