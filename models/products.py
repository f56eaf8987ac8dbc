"""Product definitions: which products exist and who is eligible for them.

The set of products is configuration; a product name found in the data without a config
entry gets `ProductSpec(name=...)` defaults, so another bank's products train without code.
"""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field, field_validator

from features.errors import ConfigError
from features.ids import name_problem
from features.schemas import DEFAULT_PRODUCTS


class ProductSpec(BaseModel):
    """One product and its basic eligibility."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    name: str
    min_age: int = Field(
        18, ge=0, le=150, description="youngest age at which a customer may be offered it"
    )
    credit: bool = Field(
        False, description="a credit product: responsible-lending rules (no offer in distress)"
    )
    requires_child_benefit: bool = Field(
        False, description="only for customers who receive child benefit (child savings)"
    )
    label: str = Field("", description="plain-language name used in reports")

    @field_validator("name")
    @classmethod
    def _name(cls, value: str) -> str:
        """Product names become model names and ledger keys: the grammar of `features.ids`."""
        problem = name_problem(value)
        if problem is not None:
            raise ValueError(f"{value[:40]!r} {problem} (example: child_savings)")
        return value

    @property
    def title(self) -> str:
        return self.label or self.name.replace("_", " ")


DEFAULT_PRODUCT_SPECS: tuple[ProductSpec, ...] = (
    ProductSpec(name="savings", label="savings account"),
    ProductSpec(name="insurance", label="travel insurance"),
    ProductSpec(name="credit_card", credit=True, label="credit card"),
    ProductSpec(name="child_savings", requires_child_benefit=True, label="child savings account"),
)
assert tuple(p.name for p in DEFAULT_PRODUCT_SPECS) == DEFAULT_PRODUCTS


def resolve_products(
    configured: tuple[ProductSpec, ...], names: list[str] | tuple[str, ...]
) -> list[ProductSpec]:
    """The specs for `names`: the configured spec where there is one, defaults otherwise."""
    by_name = {p.name: p for p in configured}
    for n in names:
        problem = name_problem(n) if n not in by_name else None
        if problem is not None:
            raise ConfigError(f"product {n[:40]!r} {problem} (example: child_savings)")
    return [by_name.get(n) or ProductSpec(name=n) for n in names]
