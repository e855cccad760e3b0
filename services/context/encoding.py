"""Reply encodings: a client offers the encodings it can read in an ``Accept-Encoding`` request
header (``gzip``, ``identity``, comma-separated, in its order of preference); a cached view of
at least ``COMPRESS_FROM`` bytes then travels gzip-compressed, marked by a
``Content-Encoding: gzip`` reply header. Without the header, for a small reply, or for a reply
rendered for one request only, the reply is plain JSON.

A large view crosses NATS and both processes' socket buffers several times; compressing it once
per cached view costs less than moving three to ten times the bytes on every hit. A reply made
for a single request is not compressed: deflating it costs the service more time than the
smaller transfer saves."""

from __future__ import annotations

import re
import zlib

from taskloom.context.domain.errors import MalformedRequest

__all__ = [
    "ACCEPT_ENCODING",
    "COMPRESS_FROM",
    "CONTENT_ENCODING",
    "ENCODINGS",
    "IDENTITY",
    "GZIP",
    "ReplyBody",
    "UnknownReplyEncoding",
    "decode_reply",
    "negotiate",
]

ACCEPT_ENCODING = "Accept-Encoding"
CONTENT_ENCODING = "Content-Encoding"
IDENTITY = "identity"
GZIP = "gzip"
ENCODINGS = (GZIP, IDENTITY)
# below this a reply is sent as it is: compressing would cost more than the bytes it saves
COMPRESS_FROM = 16 * 1024
# the fastest level: a view of JSON shrinks nearly as much as at level 6, at half the cost
_LEVEL = 1
_GZIP_WBITS = 31  # deflate in a gzip wrapper, whose trailer holds the inflated size
# deflate never expands more than about 1032:1, so a larger size in a trailer is not believed
_MAX_RATIO = 1032
# a compressed form must save at least this share of the bytes to be worth the client's inflate
_MIN_SAVING = 0.1
_TOKEN = re.compile(r"[A-Za-z0-9][A-Za-z0-9._+-]*")


def negotiate(header: str | None) -> str:
    """The encoding to answer in, given the request's ``Accept-Encoding`` value (or None).

    The first supported encoding the client lists wins; unsupported names are skipped, so a
    client may offer newer encodings first. A list that does not parse, or that names no
    supported encoding, is a malformed request."""
    if header is None:
        return IDENTITY
    offered = [token.strip() for token in header.split(",")]
    bad = [token for token in offered if not _TOKEN.fullmatch(token)]
    if bad:
        raise MalformedRequest(
            f"malformed {ACCEPT_ENCODING} header {header!r}: expected a comma-separated list of "
            f"encoding names ({', '.join(ENCODINGS)})",
            header=header,
        )
    for token in offered:
        name = token.lower()
        if name in ENCODINGS:
            return name
    raise MalformedRequest(
        f"none of the encodings in {ACCEPT_ENCODING} {header!r} is supported; "
        f"the context service answers in {', '.join(ENCODINGS)}",
        header=header,
    )


class ReplyBody:
    """A rendered reply. A ``reused`` one (a cached view's) makes its compressed form at most
    once, on the first request that accepts it; every later answer sends the same bytes."""

    __slots__ = ("_packed", "data", "reused")

    def __init__(self, data: bytes, *, reused: bool = False) -> None:
        self.data = data
        self.reused = reused
        self._packed: bytes | None = None

    def encoded(self, encoding: str) -> tuple[bytes, str]:
        """The bytes to send for a client that accepts ``encoding``, and their encoding."""
        if encoding != GZIP or not self.reused or len(self.data) < COMPRESS_FROM:
            return self.data, IDENTITY
        if self._packed is None:
            packed = zlib.compress(self.data, _LEVEL, wbits=_GZIP_WBITS)
            # not worth it (already-compressed values): remember that, send the original
            self._packed = packed if len(packed) <= len(self.data) * (1 - _MIN_SAVING) else b""
        if not self._packed:
            return self.data, IDENTITY
        return self._packed, GZIP


class UnknownReplyEncoding(ValueError):
    """A reply whose ``Content-Encoding`` this client does not know, or that does not decode."""


def decode_reply(data: bytes, content_encoding: str | None) -> bytes:
    """A reply's JSON bytes, given its ``Content-Encoding`` header (None when absent)."""
    if content_encoding is None or content_encoding == IDENTITY:
        return data
    if content_encoding == GZIP:
        # the trailer's size lets the output buffer be allocated once instead of grown
        size = int.from_bytes(data[-4:], "little") if len(data) >= 4 else 0
        try:
            return zlib.decompress(data, wbits=_GZIP_WBITS, bufsize=max(1, min(size, len(data) * _MAX_RATIO)))
        except zlib.error as exc:
            raise UnknownReplyEncoding(f"a gzip reply that does not inflate: {exc}") from None
    raise UnknownReplyEncoding(f"a reply in an unknown encoding {content_encoding!r}")
