"""Reply encodings: what an ``Accept-Encoding`` header negotiates, when a reply is compressed,
and how the client decodes (or refuses) a reply."""

from __future__ import annotations

import json
import os
import zlib

import pytest

from taskloom.context.domain import MalformedRequest
from taskloom.context.encoding import (
    COMPRESS_FROM,
    GZIP,
    IDENTITY,
    ReplyBody,
    UnknownReplyEncoding,
    decode_reply,
    negotiate,
)

LARGE = json.dumps({f"key_{i:04d}": {"id": i, "note": os.urandom(32).hex()} for i in range(400)}).encode()


@pytest.mark.parametrize(
    ("header", "expected"),
    [
        (None, IDENTITY),
        ("gzip", GZIP),
        ("GZip", GZIP),
        ("identity", IDENTITY),
        ("identity, gzip", IDENTITY),
        ("gzip,identity", GZIP),
        ("zstd, br, gzip", GZIP),  # names it does not know are passed over, in order
        (" br ,identity ", IDENTITY),
    ],
)
def test_the_first_supported_offered_encoding_wins(header: str | None, expected: str) -> None:
    assert negotiate(header) == expected


@pytest.mark.parametrize(
    ("header", "needle"),
    [
        ("", "malformed Accept-Encoding header ''"),
        ("gzip,,identity", "expected a comma-separated list"),
        ("gzip;q=1", "malformed Accept-Encoding header 'gzip;q=1'"),
        ("g zip", "malformed"),
        ("br", "none of the encodings in Accept-Encoding 'br' is supported"),
        ("zstd, lz4", "answers in gzip, identity"),
    ],
)
def test_a_malformed_or_unsupported_offer_is_a_malformed_request(header: str, needle: str) -> None:
    with pytest.raises(MalformedRequest) as caught:
        negotiate(header)
    assert needle in caught.value.message
    assert caught.value.details == {"header": header}


def test_a_reused_large_body_is_compressed_once_and_decodes_to_the_same_bytes() -> None:
    body = ReplyBody(LARGE, reused=True)
    packed, encoding = body.encoded(GZIP)
    assert encoding == GZIP and len(packed) < len(LARGE) * 0.9
    assert body.encoded(GZIP)[0] is packed  # made once, sent again as it is
    assert decode_reply(packed, GZIP) == LARGE
    assert body.encoded(IDENTITY) == (LARGE, IDENTITY)


def test_small_single_use_or_incompressible_bodies_are_sent_as_they_are() -> None:
    small = b'{"op":"get","context":{}}'
    assert ReplyBody(small, reused=True).encoded(GZIP) == (small, IDENTITY)
    assert len(LARGE) >= COMPRESS_FROM
    assert ReplyBody(LARGE).encoded(GZIP) == (LARGE, IDENTITY)
    noise = os.urandom(COMPRESS_FROM * 2)
    body = ReplyBody(noise, reused=True)
    assert body.encoded(GZIP) == (noise, IDENTITY)
    assert body.encoded(GZIP) == (noise, IDENTITY)


def test_decoding_plain_gzip_and_refused_replies() -> None:
    assert decode_reply(b"{}", None) == b"{}"
    assert decode_reply(b"{}", IDENTITY) == b"{}"
    assert decode_reply(zlib.compress(LARGE, 1, wbits=31), GZIP) == LARGE
    # the size in the trailer sizes the output buffer, and inflating checks it too
    packed = bytearray(zlib.compress(LARGE, 1, wbits=31))
    with pytest.raises(UnknownReplyEncoding, match="does not inflate"):
        decode_reply(bytes(packed[:-4]) + (7).to_bytes(4, "little"), GZIP)
    with pytest.raises(UnknownReplyEncoding, match="does not inflate"):
        decode_reply(b"not gzip at all", GZIP)
    with pytest.raises(UnknownReplyEncoding, match="does not inflate"):
        decode_reply(b"", GZIP)
    with pytest.raises(UnknownReplyEncoding, match="unknown encoding 'br'"):
        decode_reply(b"{}", "br")
