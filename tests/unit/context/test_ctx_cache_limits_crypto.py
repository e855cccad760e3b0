"""View cache (LRU, TTL, invalidation by scope, hit rate), size limits, sensitivity detection
and the Fernet cipher with key rotation."""

from __future__ import annotations

import os
import stat
from pathlib import Path

import pytest
from cryptography.fernet import Fernet

from taskloom.context.adapters.crypto import CipherError, ValueCipher, load_or_create_key_file
from taskloom.context.domain import ContextTooLarge, Limits, ScopeKey, SensitivityRules, ViewCache, json_size
from taskloom.contracts.context import Classification as C
from taskloom.contracts.context import ContextScope as S

WF = ScopeKey(S.WORKFLOW, "wf")
TASK = ScopeKey(S.TASK, "wf/t")
OTHER = ScopeKey(S.WORKFLOW, "other")


class Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def test_cache_hits_misses_and_hit_rate() -> None:
    cache: ViewCache[str] = ViewCache(10, 60)
    assert cache.get("k") is None
    cache.put("k", "view", [WF])
    assert cache.get("k") == "view"
    assert cache.get("k") == "view"
    stats = cache.stats()
    assert (stats.hits, stats.misses) == (2, 1)
    assert stats.hit_rate == pytest.approx(2 / 3)


def test_write_to_a_scope_drops_exactly_the_views_that_read_it() -> None:
    cache: ViewCache[str] = ViewCache(10, 60)
    cache.put("a", "A", [WF, TASK])
    cache.put("b", "B", [OTHER])
    assert cache.invalidate(TASK) == 1
    assert cache.get("a") is None
    assert cache.get("b") == "B"
    assert cache.invalidate(WF) == 0


def test_ttl_expires_views() -> None:
    clock = Clock()
    cache: ViewCache[str] = ViewCache(10, 5, clock=clock)
    cache.put("a", "A", [WF])
    clock.now = 4.9
    assert cache.get("a") == "A"
    clock.now = 5.0
    assert cache.get("a") is None
    assert len(cache) == 0


def test_lru_evicts_the_least_recently_used() -> None:
    cache: ViewCache[int] = ViewCache(2, 60)
    cache.put("a", 1, [WF])
    cache.put("b", 2, [WF])
    cache.get("a")
    cache.put("c", 3, [WF])
    assert cache.get("b") is None
    assert cache.get("a") == 1
    assert cache.get("c") == 3


def test_a_view_loaded_before_a_write_is_not_cached() -> None:
    cache: ViewCache[str] = ViewCache(10, 60)
    seen = cache.generations([WF, TASK])
    cache.invalidate(TASK)  # a write lands while the view is being loaded
    assert cache.put("a", "stale", [WF, TASK], seen) is False
    assert cache.get("a") is None
    seen = cache.generations([WF, TASK])
    assert cache.put("a", "fresh", [WF, TASK], seen) is True


def test_limits_refuse_rather_than_truncate() -> None:
    limits = Limits(max_value_bytes=10, max_context_bytes=100)
    limits.check_value("k", 10)
    with pytest.raises(ContextTooLarge, match="'k' is 11 bytes, over the limit of 10"):
        limits.check_value("k", 11)
    with pytest.raises(ContextTooLarge, match="max_context_memory_mb"):
        limits.check_context("view", 101)
    assert json_size({"a": "é"}) == len('{"a":"é"}'.encode())
    assert Limits.from_mb(64).max_context_bytes == 64 * 1024 * 1024


@pytest.mark.parametrize(
    ("key", "value", "cls", "flag", "sensitive"),
    [
        ("github_token", "x", C.INTERNAL, False, True),
        ("DB_PASSWORD", "x", C.PUBLIC, False, True),
        ("openai_api_key", "x", C.PUBLIC, False, True),
        ("notes", "x", C.INTERNAL, False, False),
        ("notes", "x", C.INTERNAL, True, True),
        ("notes", "x", C.CONFIDENTIAL, False, True),
        ("config", {"db": {"password": "x"}}, C.INTERNAL, False, True),
        ("config", [{"client_secret": "x"}], C.INTERNAL, False, True),
        ("config", {"db": {"host": "x"}}, C.INTERNAL, False, False),
    ],
)
def test_sensitivity(key: str, value: object, cls: C, flag: bool, sensitive: bool) -> None:
    assert SensitivityRules().is_sensitive(key, value, cls, flag) is sensitive


def test_multifernet_rotation_keeps_old_values_readable() -> None:
    old, new = Fernet.generate_key(), Fernet.generate_key()
    token = ValueCipher([old]).encrypt({"pw": "hunter2"})
    rotated = ValueCipher([new, old])
    assert rotated.decrypt(token) == {"pw": "hunter2"}
    fresh = rotated.encrypt("v")
    with pytest.raises(CipherError):
        ValueCipher([old]).decrypt(fresh)
    assert ValueCipher([new]).decrypt(rotated.rotate(token)) == {"pw": "hunter2"}
    assert b"hunter2" not in token


def test_bad_key_is_a_clear_error() -> None:
    with pytest.raises(CipherError, match="key #1 is not a Fernet key"):
        ValueCipher([Fernet.generate_key(), b"short"])


def test_key_file_is_created_private_once(tmp_path: Path) -> None:
    path = tmp_path / "sub" / "context.key"
    first = load_or_create_key_file(path)
    assert stat.S_IMODE(os.stat(path).st_mode) == 0o600
    assert load_or_create_key_file(path) == first
    assert ValueCipher([first]).decrypt(ValueCipher([first]).encrypt(1)) == 1
    assert list(path.parent.iterdir()) == [path]
