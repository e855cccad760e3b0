"""The JSON web API of the shop (a bare ASGI application)."""

from __future__ import annotations

import json

from shopcart import inventory

ROUTES = {"/items": "list_items", "/cart": "show_cart"}


async def app(scope, receive, send):
    """Serve ``/items`` and ``/cart``; everything else is 404."""
    path = scope.get("path", "")
    if path == "/items":
        status, body = 200, {"apple": inventory.level("apple")}
    elif path == "/cart":
        status, body = 200, {"lines": []}
    else:
        status, body = 404, {"detail": "not found"}
    await send({"type": "http.response.start", "status": status, "headers": []})
    await send({"type": "http.response.body", "body": json.dumps(body).encode()})
