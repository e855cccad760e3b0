"""JWT bearer tokens: verification with the algorithm fixed by settings, and dev-token minting.

The accepted algorithm is exactly ``settings.jwt_algorithm``; the token header's ``alg`` is
only compared against it, never trusted. ``exp``, ``aud``, ``iss`` and ``sub`` are required.
HS256 uses the shared secret; RS256 uses a PEM public key file, a JWKS file or a JWKS URL,
picking the key by the header's ``kid``.
"""

from __future__ import annotations

import json
import time
import uuid
from typing import Any

import jwt
from jwt import PyJWKClient, PyJWKSet

from taskloom.contracts.enums import Role
from taskloom.gateway.config import GatewaySettings
from taskloom.gateway.domain.authz import OPERATION_ROLES, Operation, Principal, can_access, has_operation

__all__ = [
    "OPERATION_ROLES",
    "AuthError",
    "Operation",
    "Principal",
    "TokenVerifier",
    "can_access",
    "has_operation",
    "jwk_from_public_pem",
    "mint_token",
    "parse_roles",
]


class AuthError(Exception):
    """The token is missing or not acceptable; ``reason`` is safe to show the caller."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


def parse_roles(claims: dict[str, Any]) -> frozenset[Role]:
    raw = claims.get("roles", claims.get("role", []))
    names = [raw] if isinstance(raw, str) else raw if isinstance(raw, list) else []
    known = {r.value for r in Role}
    return frozenset(Role(n) for n in names if isinstance(n, str) and n in known)


class TokenVerifier:
    def __init__(self, settings: GatewaySettings) -> None:
        self.settings = settings
        self.algorithm = settings.jwt_algorithm
        self._static_key: Any = None
        self._jwks: PyJWKSet | None = None
        self._jwks_client: PyJWKClient | None = None
        if self.algorithm == "HS256":
            self._static_key = settings.jwt_secret.get_secret_value()
        elif settings.jwt_jwks_file is not None:
            self._jwks = PyJWKSet.from_json(settings.jwt_jwks_file.read_text())
        elif settings.jwt_jwks_url:
            self._jwks_client = PyJWKClient(settings.jwt_jwks_url, cache_keys=True, lifespan=300)
        elif settings.jwt_public_key_file is not None:
            self._static_key = settings.jwt_public_key_file.read_text()
        else:
            raise ValueError(
                "RS256 needs TASKLOOM_JWT_PUBLIC_KEY_FILE, TASKLOOM_JWT_JWKS_FILE or TASKLOOM_JWT_JWKS_URL"
            )

    def verify(self, token: str) -> Principal:
        """The principal of a valid token; raises ``AuthError`` otherwise. May block on a JWKS
        URL fetch (cached), so async callers run it in a thread when a URL is configured."""
        if not token:
            raise AuthError("missing bearer token")
        try:
            header = jwt.get_unverified_header(token)
        except jwt.InvalidTokenError:
            raise AuthError("malformed token") from None
        if header.get("alg") != self.algorithm:
            raise AuthError(f"token algorithm must be {self.algorithm}")
        key = self._key_for(token, header)
        try:
            claims = jwt.decode(
                token,
                key,
                algorithms=[self.algorithm],
                audience=self.settings.jwt_audience,
                issuer=self.settings.jwt_issuer,
                leeway=self.settings.jwt_leeway_seconds,
                options={"require": ["exp", "aud", "iss", "sub"]},
            )
        except jwt.ExpiredSignatureError:
            raise AuthError("token expired") from None
        except jwt.InvalidAudienceError:
            raise AuthError("token audience is not accepted") from None
        except jwt.InvalidIssuerError:
            raise AuthError("token issuer is not accepted") from None
        except jwt.MissingRequiredClaimError as exc:
            raise AuthError(f"token lacks the required claim {exc.claim!r}") from None
        except jwt.InvalidTokenError:
            raise AuthError("invalid token") from None
        subject = claims.get("sub")
        if not isinstance(subject, str) or not subject.strip():
            raise AuthError("token subject is empty")
        return Principal(
            subject=subject,
            roles=parse_roles(claims),
            expires_at=float(claims["exp"]),
            token_id=claims.get("jti") if isinstance(claims.get("jti"), str) else None,
            claims=claims,
        )

    @property
    def may_block(self) -> bool:
        return self._jwks_client is not None

    def _key_for(self, token: str, header: dict[str, Any]) -> Any:
        if self._static_key is not None:
            return self._static_key
        kid = header.get("kid")
        try:
            if self._jwks_client is not None:
                return self._jwks_client.get_signing_key_from_jwt(token).key
            assert self._jwks is not None
            if kid is None:
                if len(self._jwks.keys) == 1:
                    return self._jwks.keys[0].key
                raise AuthError("token has no 'kid' and the key set has several keys")
            return self._jwks[kid].key
        except KeyError:
            raise AuthError("token 'kid' names no known key") from None
        except jwt.PyJWKClientError:
            raise AuthError("token signing key could not be found") from None


def mint_token(
    settings: GatewaySettings,
    user: str,
    roles: list[str],
    ttl_seconds: int | None = None,
    *,
    kid: str | None = None,
    extra: dict[str, Any] | None = None,
) -> str:
    """A token for ``user`` with ``roles``: HS256 from the dev secret, or RS256 from
    ``TASKLOOM_JWT_PRIVATE_KEY_FILE``."""
    unknown = [r for r in roles if r not in {x.value for x in Role}]
    if unknown:
        raise ValueError(f"unknown role(s) {unknown}; choose from {[r.value for r in Role]}")
    now = int(time.time())
    claims: dict[str, Any] = {
        "sub": user,
        "roles": roles,
        "iat": now,
        "nbf": now,
        "exp": now + (ttl_seconds if ttl_seconds is not None else settings.jwt_ttl_seconds),
        "aud": settings.jwt_audience,
        "iss": settings.jwt_issuer,
        "jti": str(uuid.uuid4()),
        **(extra or {}),
    }
    headers = {"kid": kid} if kid else None
    if settings.jwt_algorithm == "HS256":
        return jwt.encode(claims, settings.jwt_secret.get_secret_value(), "HS256", headers=headers)
    if settings.jwt_private_key_file is None:
        raise ValueError("RS256 tokens need TASKLOOM_JWT_PRIVATE_KEY_FILE")
    return jwt.encode(claims, settings.jwt_private_key_file.read_text(), "RS256", headers=headers)


def jwk_from_public_pem(pem: str, kid: str) -> dict[str, Any]:
    """A JWKS entry for an RSA public key (for writing a JWKS file)."""
    from cryptography.hazmat.primitives.asymmetric.rsa import RSAPublicKey
    from cryptography.hazmat.primitives.serialization import load_pem_public_key

    key = load_pem_public_key(pem.encode())
    if not isinstance(key, RSAPublicKey):
        raise ValueError("not an RSA public key")
    jwk: dict[str, Any] = json.loads(jwt.algorithms.RSAAlgorithm.to_jwk(key))
    jwk.update({"kid": kid, "use": "sig", "alg": "RS256"})
    return jwk
