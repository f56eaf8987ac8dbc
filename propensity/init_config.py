"""`propensity init`: a commented `propensity.toml` with every default, generated from the typed
config models so the file and the code never drift."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import tomlkit
from pydantic import BaseModel
from tomlkit.items import Table

from propensity.config import SHARED_IN_SERVING, AppConfig

HEADER = """propensity.toml: the one configuration file of `propensity run` and friends.
Every key below shows its default; delete what you do not change. Unknown keys are errors.
Keys shown commented out have no default value (empty = automatic)."""


def _plain(value: Any) -> Any:
    if isinstance(value, BaseModel):
        return {k: _plain(v) for k, v in value.model_dump(mode="python").items()}
    if isinstance(value, Path):
        return str(value)
    if isinstance(value, tuple | list):
        return [_plain(v) for v in value]
    if isinstance(value, dict):
        return {str(k): _plain(v) for k, v in value.items()}
    return value


def _item(value: Any) -> Any:
    """A TOML item; dicts inline so they stay beside their key."""
    if isinstance(value, dict):
        inline = tomlkit.inline_table()
        inline.update(_plain(value))
        return inline
    return tomlkit.item(_plain(value))


def _fill(table: Table, model: BaseModel, skip: tuple[str, ...] = ()) -> None:
    """Add each field of `model` to `table`, nested models as sub-tables, with descriptions."""
    fields = type(model).model_fields
    nested = []
    for name, info in fields.items():
        if name in skip:
            continue
        value = getattr(model, name)
        if isinstance(value, BaseModel):
            nested.append((name, value, info.description))
            continue
        if isinstance(value, tuple) and value and isinstance(value[0], BaseModel):
            nested.append((name, value, info.description))
            continue
        if value is None or (isinstance(value, tuple | dict) and not value):
            shown = "(unset)" if value is None else ("[]" if value == () else "{}")
            table.add(tomlkit.comment(f"{name} = {shown}"))
            continue
        item = _item(value)
        if info.description:
            item.comment(info.description)
        table.add(name, item)
    for name, value, description in nested:
        if isinstance(value, BaseModel):
            sub = tomlkit.table()
            if description:
                sub.add(tomlkit.comment(description))
            _fill(sub, value)
            table.add(name, sub)
        else:
            table.add(name, _array_of_tables(value))


def _array_of_tables(models: tuple[BaseModel, ...]) -> Any:
    """`[[name]]` entries, one per model (products, campaigns)."""
    aot = tomlkit.aot()
    for model in models:
        sub = tomlkit.table()
        _fill(sub, model)
        aot.append(sub)
    return aot


def render_default_config() -> str:
    """The commented default configuration as TOML text."""
    doc = tomlkit.document()
    for line in HEADER.splitlines():
        doc.add(tomlkit.comment(line))
    config = AppConfig()
    for name, info in AppConfig.model_fields.items():
        value = getattr(config, name)
        doc.add(tomlkit.nl())
        if isinstance(value, BaseModel):
            table = tomlkit.table()
            if info.description or value.__doc__:
                table.add(tomlkit.comment((value.__doc__ or "").strip().splitlines()[0]))
            _fill(table, value, skip=SHARED_IN_SERVING if name == "serving" else ())
            doc.add(name, table)
        elif isinstance(value, tuple):
            doc.add(name, _array_of_tables(value))
        else:
            item = _item(value)
            if info.description:
                item.comment(info.description)
            doc.add(name, item)
    return tomlkit.dumps(doc)


def write_default_config(path: Path, force: bool = False) -> Path:
    """Write the commented defaults to `path`; refuse to overwrite unless `force`."""
    from features.errors import ConfigError

    if path.exists() and not force:
        raise ConfigError(f"{path} exists; use --force to overwrite it")
    path.write_text(render_default_config())
    return path
