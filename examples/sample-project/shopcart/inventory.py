"""Stock levels per SKU."""

from __future__ import annotations

_stock: dict[str, int] = {}


def restock(sku: str, quantity: int) -> int:
    _stock[sku] = _stock.get(sku, 0) + quantity
    return _stock[sku]


def reserve(sku: str, quantity: int) -> bool:
    available = _stock.get(sku, 0)
    if available < quantity:
        return False
    _stock[sku] = available - quantity
    return True


def level(sku: str) -> int:
    """Units of ``sku`` in stock."""
    return _stock.get(sku, 0)
