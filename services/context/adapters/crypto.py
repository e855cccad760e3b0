"""Encryption at rest of sensitive context values with Fernet / MultiFernet: the first key
encrypts, every key decrypts, so keys rotate by putting a new one first."""

from __future__ import annotations

import json
import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from cryptography.fernet import Fernet, InvalidToken, MultiFernet

from taskloom.observability import get_logger
from taskloom.settings import Settings

__all__ = ["KEY_FILE_NAME", "CipherError", "ValueCipher", "load_or_create_key_file"]

KEY_FILE_NAME = "context-encryption.key"
_log = get_logger(__name__)


class CipherError(Exception):
    """A key that is not a Fernet key, or a ciphertext no configured key opens."""


class ValueCipher:
    def __init__(self, keys: Sequence[bytes | str]) -> None:
        if not keys:
            raise CipherError("at least one encryption key is needed")
        fernets = []
        for i, key in enumerate(keys):
            try:
                fernets.append(Fernet(key))
            except (ValueError, TypeError):
                raise CipherError(
                    f"context encryption key #{i} is not a Fernet key "
                    "(32 bytes, url-safe base64; make one with Fernet.generate_key())"
                ) from None
        self._fernet = MultiFernet(fernets)

    def encrypt(self, value: Any) -> bytes:
        return self.encrypt_raw(json.dumps(value, separators=(",", ":")).encode())

    def encrypt_raw(self, json_text: bytes) -> bytes:
        """Encrypt a value already serialised as JSON."""
        return self._fernet.encrypt(json_text)

    def decrypt(self, token: bytes) -> Any:
        return json.loads(self.decrypt_raw(token))

    def decrypt_raw(self, token: bytes) -> bytes:
        """The JSON text of an encrypted value."""
        try:
            return self._fernet.decrypt(bytes(token))
        except InvalidToken:
            raise CipherError("no configured context encryption key decrypts this value") from None

    def rotate(self, token: bytes) -> bytes:
        """Re-encrypt under the first key (for re-keying stored values)."""
        return self._fernet.rotate(bytes(token))

    @classmethod
    def from_settings(cls, settings: Settings) -> ValueCipher:
        keys = [k.get_secret_value() for k in settings.context_encryption_keys]
        if keys:
            return cls(keys)
        path = Path(settings.data_dir) / KEY_FILE_NAME
        _log.warning(
            "no context encryption key configured; using a key file (set TASKLOOM_CONTEXT_ENCRYPTION_KEYS "
            "in production)",
            key_file=str(path),
        )
        return cls([load_or_create_key_file(path)])


def load_or_create_key_file(path: Path) -> bytes:
    """The key in ``path``, created (mode 0600) on first use; safe when several processes race."""
    path.parent.mkdir(parents=True, exist_ok=True)
    if not path.exists():
        # write a private temp file, then link it into place: a racing process either wins the
        # link or finds the complete file, never a half-written one
        tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "wb") as handle:
            handle.write(Fernet.generate_key())
        try:
            os.link(tmp, path)
        except FileExistsError:
            pass
        finally:
            tmp.unlink(missing_ok=True)
    key = path.read_bytes().strip()
    if not key:
        raise CipherError(f"context key file {path} is empty")
    return key
