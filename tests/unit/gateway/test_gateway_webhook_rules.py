"""Webhook signatures, backoff and the SSRF guard (pure parts)."""

from __future__ import annotations

import hashlib
import hmac

import pytest

from taskloom.gateway.domain.webhooks import (
    CallbackRefused,
    backoff_seconds,
    check_callback_url,
    check_resolved_addresses,
    sign,
    verify,
)


def test_signature_is_hmac_sha256_of_the_body():
    body = b'{"a":1}'
    expected = "sha256=" + hmac.new(b"k", body, hashlib.sha256).hexdigest()
    assert sign(b"k", body) == expected
    assert verify(b"k", body, expected)
    assert not verify(b"k", body + b" ", expected)
    assert not verify(b"other", body, expected)


def test_backoff_doubles_up_to_a_cap():
    assert [backoff_seconds(n, 1.0, 10.0) for n in range(1, 6)] == [1.0, 2.0, 4.0, 8.0, 10.0]


@pytest.mark.parametrize(
    "url", ["ftp://example.com/x", "file:///etc/passwd", "gopher://x", "example.com", "http://"]
)
def test_only_http_urls_with_a_host(url):
    with pytest.raises(CallbackRefused):
        check_callback_url(url)


def test_credentials_in_the_url_are_refused():
    with pytest.raises(CallbackRefused, match="credentials"):
        check_callback_url("https://user:pw@example.com/hook")


@pytest.mark.parametrize(
    "address",
    ["127.0.0.1", "10.1.2.3", "192.168.0.5", "172.16.9.9", "169.254.169.254", "::1", "fd00::1", "0.0.0.0"],
)
def test_private_and_loopback_targets_are_refused(address):
    with pytest.raises(CallbackRefused, match="private or loopback"):
        check_resolved_addresses("h", [address], allow_private=False)


def test_any_private_address_among_several_refuses():
    with pytest.raises(CallbackRefused):
        check_resolved_addresses("h", ["93.184.216.34", "127.0.0.1"], allow_private=False)


def test_public_addresses_pass_and_private_ones_when_allowed():
    check_resolved_addresses("h", ["93.184.216.34", "2606:2800:220:1::1"], allow_private=False)
    check_resolved_addresses("h", ["127.0.0.1"], allow_private=True)


def test_unresolvable_host_is_refused():
    with pytest.raises(CallbackRefused, match="does not resolve"):
        check_resolved_addresses("h", [], allow_private=True)
