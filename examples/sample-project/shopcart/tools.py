"""MCP tools that let an assistant look at the shop."""

from __future__ import annotations

from mcp.server.fastmcp import FastMCP

from shopcart import inventory

mcp = FastMCP("shopcart")


@mcp.tool()
def stock_level(sku: str) -> int:
    """Units of an item in stock.

    Args:
        sku: The item's stock-keeping unit.
    """
    return inventory.level(sku)


@mcp.tool()
def reserve_stock(sku: str, quantity):
    return inventory.reserve(sku, quantity)
