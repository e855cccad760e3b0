"""shopcart: stock keeping, pricing and a JSON web API for a small shop."""

__version__ = "0.3.0"
