"""Compressed replies through NATS: a client offering gzip gets a large cached view compressed
and decodes it to the same view; a malformed or unsupported offer gets a clear error and the
service keeps serving."""

from __future__ import annotations

import json
from typing import Any

import pytest

from taskloom.context import ContextClient
from taskloom.context.encoding import ACCEPT_ENCODING, COMPRESS_FROM, CONTENT_ENCODING, GZIP, decode_reply
from taskloom.context.service import ContextService
from taskloom.contracts.base import new_id
from taskloom.contracts.context import (
    ContextError,
    ContextErrorCode,
    ContextGetRequest,
    ContextView,
    parse_context_reply,
)
from taskloom.contracts.subjects import Subjects


async def seed_large_view(client: ContextClient, wf: str) -> None:
    for i in range(200):
        note = f"finding {i}: " + "the cache drops views of a written scope; " * 3
        await client.put(
            "orchestrator", "workflow", f"finding_{i:03d}", {"id": i, "note": note}, workflow_id=wf
        )


async def test_a_large_cached_view_travels_compressed_and_decodes_to_the_same_view(
    service: ContextService, client: ContextClient, nc: Any, subjects: Subjects
) -> None:
    wf = new_id()
    await seed_large_view(client, wf)
    request = ContextGetRequest(agent_id="orchestrator", workflow_id=wf).model_dump_json().encode()
    offer = {ACCEPT_ENCODING: GZIP}
    subject = subjects.context("get")
    miss = await nc.request(subject, request, timeout=5, headers=offer)
    assert not miss.headers  # rendered for this request only: sent as it is
    assert len(miss.data) >= COMPRESS_FROM
    hits = [await nc.request(subject, request, timeout=5, headers=offer) for _ in range(2)]
    for hit in hits:
        assert hit.headers == {CONTENT_ENCODING: GZIP}
        assert len(hit.data) < len(miss.data) // 3
    plain = await nc.request(subject, request, timeout=5)
    assert not plain.headers
    assert decode_reply(hits[0].data, GZIP) == decode_reply(hits[1].data, GZIP) == plain.data
    first, second = json.loads(miss.data), json.loads(plain.data)
    assert (first.pop("cached"), second.pop("cached")) == (False, True)
    assert first == second and len(first["context"]) == 200
    # the client offers gzip by default; both clients see the same view
    compressed = await client.get("orchestrator", wf)
    uncompressed = await ContextClient(nc, subjects, compress=False).get("orchestrator", wf)
    assert compressed.cached and compressed == uncompressed
    assert compressed.context["finding_007"]["id"] == 7


async def test_small_replies_are_never_compressed(
    service: ContextService, client: ContextClient, nc: Any, subjects: Subjects
) -> None:
    wf = new_id()
    await client.put("orchestrator", "workflow", "plan", "p", workflow_id=wf)
    request = ContextGetRequest(agent_id="orchestrator", workflow_id=wf).model_dump_json().encode()
    for _ in range(2):
        reply = await nc.request(subjects.context("get"), request, timeout=5, headers={ACCEPT_ENCODING: GZIP})
        assert not reply.headers
        view = parse_context_reply(reply.data)
        assert isinstance(view, ContextView) and view.context == {"plan": "p"}


@pytest.mark.parametrize(
    ("offer", "needle"),
    [
        ("br", "none of the encodings in Accept-Encoding 'br' is supported"),
        ("gzip;q=0.5", "malformed Accept-Encoding header 'gzip;q=0.5'"),
        ("", "malformed Accept-Encoding header ''"),
    ],
)
async def test_a_malformed_or_unsupported_offer_gets_a_clear_error_and_the_service_keeps_serving(
    service: ContextService, client: ContextClient, nc: Any, subjects: Subjects, offer: str, needle: str
) -> None:
    wf = new_id()
    await seed_large_view(client, wf)
    request = ContextGetRequest(agent_id="orchestrator", workflow_id=wf).model_dump_json().encode()
    for op, body in (("get", request), ("audit", b"{}")):
        reply = await nc.request(subjects.context(op), body, timeout=5, headers={ACCEPT_ENCODING: offer})
        assert not reply.headers
        error = parse_context_reply(reply.data)
        assert isinstance(error, ContextError)
        assert error.code is ContextErrorCode.MALFORMED
        assert needle in error.message
        assert error.details == {"header": offer}
    # the same service still answers, compressed or not
    assert len((await client.get("orchestrator", wf)).context) == 200
    assert len((await client.get("orchestrator", wf)).context) == 200
