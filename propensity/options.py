"""Option values the commands share: parsed one way, with errors that name the option."""

from __future__ import annotations

from datetime import date

from features.errors import ConfigError


def parse_date(text: str, option: str) -> date:
    """`YYYY-MM-DD`, or a ConfigError naming the option (exit 2, no traceback).

    The one date parser of the command line; config files get dates typed by TOML/pydantic.
    """
    try:
        return date.fromisoformat(text)
    except ValueError:
        raise ConfigError(f"{option} {text!r} is not a date YYYY-MM-DD, e.g. 2026-11-01") from None


def split_names(text: str) -> list[str]:
    """A comma-separated list: `"savings, insurance,"` -> `["savings", "insurance"]`."""
    return [p.strip() for p in text.split(",") if p.strip()]
