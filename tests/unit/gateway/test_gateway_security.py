"""JWT verification: the configured algorithm only, required claims, keys by kid; dev tokens."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import time

import jwt
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa

from taskloom.contracts.enums import Role
from taskloom.gateway.config import GatewaySettings
from taskloom.gateway.security import AuthError, TokenVerifier, jwk_from_public_pem, mint_token

SECRET = "unit-test-secret-of-at-least-32-bytes!!"


def hs_settings(**extra) -> GatewaySettings:
    return GatewaySettings(jwt_algorithm="HS256", jwt_secret=SECRET, **extra)


def claims(**over):
    now = int(time.time())
    base = {
        "sub": "alice",
        "roles": ["developer"],
        "exp": now + 3600,
        "aud": "taskloom",
        "iss": "taskloom-dev",
    }
    base.update(over)
    return {k: v for k, v in base.items() if v is not None}


@pytest.fixture(scope="module")
def rsa_keys(tmp_path_factory):
    folder = tmp_path_factory.mktemp("keys")
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    private = key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    ).decode()
    public = (
        key.public_key()
        .public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
        .decode()
    )
    (folder / "private.pem").write_text(private)
    (folder / "public.pem").write_text(public)
    (folder / "jwks.json").write_text(json.dumps({"keys": [jwk_from_public_pem(public, "k1")]}))
    return folder, private, public


def test_minted_dev_token_verifies():
    settings = hs_settings()
    principal = TokenVerifier(settings).verify(mint_token(settings, "alice", ["developer", "viewer"]))
    assert principal.subject == "alice"
    assert principal.roles == frozenset({Role.DEVELOPER, Role.VIEWER})
    assert principal.expires_at > time.time()


def test_unknown_roles_cannot_be_minted():
    with pytest.raises(ValueError, match="unknown role"):
        mint_token(hs_settings(), "alice", ["root"])


@pytest.mark.parametrize(
    ("payload", "reason"),
    [
        (claims(exp=int(time.time()) - 10), "expired"),
        (claims(exp=None), "exp"),
        (claims(aud="someone-else"), "audience"),
        (claims(aud=None), "aud"),
        (claims(iss="evil"), "issuer"),
        (claims(iss=None), "iss"),
        (claims(sub=None), "sub"),
    ],
)
def test_bad_claims_are_refused(payload, reason):
    token = jwt.encode(payload, SECRET, "HS256")
    with pytest.raises(AuthError, match=reason):
        TokenVerifier(hs_settings()).verify(token)


def test_alg_none_is_refused():
    token = jwt.encode(claims(), None, algorithm="none")
    with pytest.raises(AuthError, match="algorithm"):
        TokenVerifier(hs_settings()).verify(token)


def test_tampered_payload_is_refused():
    header, _, signature = jwt.encode(claims(), SECRET, "HS256").split(".")
    forged = base64.urlsafe_b64encode(json.dumps(claims(roles=["admin"])).encode()).decode().rstrip("=")
    with pytest.raises(AuthError, match="invalid token"):
        TokenVerifier(hs_settings()).verify(f"{header}.{forged}.{signature}")


def test_wrong_secret_is_refused():
    with pytest.raises(AuthError):
        TokenVerifier(hs_settings()).verify(
            jwt.encode(claims(), "another-secret-also-32-bytes-long!!", "HS256")
        )


def test_rs256_with_public_key_file(rsa_keys):
    folder, private, _ = rsa_keys
    settings = GatewaySettings(
        jwt_algorithm="RS256",
        jwt_public_key_file=folder / "public.pem",
        jwt_private_key_file=folder / "private.pem",
    )
    assert TokenVerifier(settings).verify(mint_token(settings, "bob", ["user"])).subject == "bob"


def hs256_by_hand(payload: dict, key: bytes) -> str:
    """An HS256 token built without PyJWT, which refuses PEM keys as HMAC secrets."""

    def b64(raw: bytes) -> str:
        return base64.urlsafe_b64encode(raw).decode().rstrip("=")

    signing_input = (
        b64(json.dumps({"alg": "HS256", "typ": "JWT"}).encode()) + "." + b64(json.dumps(payload).encode())
    )
    return signing_input + "." + b64(hmac.new(key, signing_input.encode(), hashlib.sha256).digest())


def test_hs256_signed_with_the_rs256_public_key_is_refused(rsa_keys):
    folder, _, public = rsa_keys
    settings = GatewaySettings(jwt_algorithm="RS256", jwt_public_key_file=folder / "public.pem")
    # the classic key-confusion attack: an HMAC keyed with the public key's PEM text
    with pytest.raises(AuthError, match="algorithm"):
        TokenVerifier(settings).verify(hs256_by_hand(claims(), public.encode()))


def test_rs256_with_a_jwks_file_picks_the_key_by_kid(rsa_keys):
    folder, private, _ = rsa_keys
    signer = GatewaySettings(jwt_algorithm="RS256", jwt_private_key_file=folder / "private.pem")
    verifier = TokenVerifier(GatewaySettings(jwt_algorithm="RS256", jwt_jwks_file=folder / "jwks.json"))
    assert verifier.verify(mint_token(signer, "carol", ["admin"], kid="k1")).roles == frozenset({Role.ADMIN})
    with pytest.raises(AuthError, match="kid"):
        verifier.verify(mint_token(signer, "carol", ["admin"], kid="unknown"))


def test_rs256_needs_a_key_source():
    with pytest.raises(ValueError, match="RS256 needs"):
        TokenVerifier(GatewaySettings(jwt_algorithm="RS256"))


def test_garbage_is_refused():
    for junk in ("", "abc", "a.b.c"):
        with pytest.raises(AuthError):
            TokenVerifier(hs_settings()).verify(junk)
