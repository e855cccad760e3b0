"""Discount rules applied to a cart's subtotal."""

from __future__ import annotations

from shopcart import cart

COUPONS = {"SPRING10": 0.10, "VIP25": 0.25}


def discount_rate(coupon: str | None) -> float:
    """The fraction taken off by ``coupon`` (0 for none or an unknown one)."""
    return COUPONS.get(coupon or "", 0.0)


def apply_discount(basket: cart.Cart) -> float:
    """The cart's subtotal after its coupon's discount."""
    rate = discount_rate(basket.coupon)
    # rounding to whole units loses the cents of a discounted price
    return float(round(basket.subtotal() * (1 - rate)))


def bulk_price(unit_price, quantity):
    if quantity >= 10:
        return unit_price * 0.9
    return unit_price
