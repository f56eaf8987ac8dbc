"""Product definitions: which products exist and who is eligible for them.

The set of products is configuration (`[[products]]`). A product outside the defaults must say
whether it is credit (the responsible-lending check depends on it): no silent default.
"""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict, Field, model_validator

from features.errors import ConfigError
from features.schemas import DEFAULT_PRODUCTS

DEFAULT_CREDIT = {"savings": False, "insurance": False, "credit_card": True, "child_savings": False}


class ProductSpec(BaseModel):
    """One product and its basic eligibility."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    name: str
    min_age: int = Field(18, ge=0, description="youngest age at which a customer may be offered it")
    credit: bool = Field(
        description="a credit product: responsible-lending rules (no offer in distress); "
        "required for products outside the defaults"
    )
    requires_child_benefit: bool = Field(
        False, description="only for customers who receive child benefit (child savings)"
    )
    label: str = Field("", description="plain-language name used in reports")

    @model_validator(mode="before")
    @classmethod
    def _credit_required(cls, data: Any) -> Any:
        if isinstance(data, dict) and data.get("credit") is None:
            name = data.get("name")
            if name not in DEFAULT_CREDIT:
                raise ValueError(
                    f"product {name!r} is not a default product: set credit = true or false "
                    "(whether the responsible-lending check applies)"
                )
            data = {**data, "credit": DEFAULT_CREDIT[name]}
        return data

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
    """The configured spec of each of `names`; a name without a `[[products]]` entry is an error
    (a default product name without one gets its default spec)."""
    by_name = {p.name: p for p in configured}
    out = []
    for name in names:
        if name in by_name:
            out.append(by_name[name])
        elif name in DEFAULT_CREDIT:
            out.append(ProductSpec(name=name))
        else:
            raise ConfigError(
                f"product {name!r} has no [[products]] entry: add one, e.g. "
                f'[[products]] name = "{name}" credit = true'
            )
    return out
