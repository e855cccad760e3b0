"""A customer's cart: lines of items with quantities and unit prices."""

from __future__ import annotations

from dataclasses import dataclass, field

from shopcart import pricing


@dataclass
class Line:
    """One item in the cart."""

    sku: str
    quantity: int
    unit_price: float


@dataclass
class Cart:
    """The items a customer is about to buy, and the coupon they entered."""

    lines: list[Line] = field(default_factory=list)
    coupon: str | None = None

    def add(self, sku: str, quantity: int, unit_price: float) -> None:
        """Add ``quantity`` of ``sku`` at ``unit_price``."""
        if quantity <= 0:
            raise ValueError("quantity must be positive")
        self.lines.append(Line(sku, quantity, unit_price))

    def subtotal(self) -> float:
        """The sum of all lines before any discount."""
        return sum(line.quantity * line.unit_price for line in self.lines)

    def total(self) -> float:
        """What the customer pays."""
        return pricing.apply_discount(self)
