"""LRU cache with a time-to-live for rendered context views, invalidated by scope on write,
with hit-rate accounting."""

from __future__ import annotations

import time
from collections import OrderedDict
from collections.abc import Callable, Hashable, Iterable
from dataclasses import dataclass
from typing import Generic, TypeVar

from taskloom.context.domain.scopes import ScopeKey

__all__ = ["CacheStats", "ViewCache"]

V = TypeVar("V")
_MAX_TRACKED = 100_000


@dataclass(frozen=True, slots=True)
class CacheStats:
    hits: int
    misses: int
    size: int
    invalidations: int

    @property
    def hit_rate(self) -> float:
        total = self.hits + self.misses
        return self.hits / total if total else 0.0


class ViewCache(Generic[V]):
    """Views keyed by request; each view remembers the scopes it was built from, so a write to
    a scope drops exactly the views that read it."""

    def __init__(self, maxsize: int, ttl_seconds: float, clock: Callable[[], float] = time.monotonic) -> None:
        if maxsize < 1 or ttl_seconds <= 0:
            raise ValueError("cache needs maxsize >= 1 and a positive ttl")
        self._maxsize = maxsize
        self._ttl = ttl_seconds
        self._clock = clock
        self._items: OrderedDict[Hashable, tuple[float, V, tuple[ScopeKey, ...]]] = OrderedDict()
        self._by_scope: dict[ScopeKey, set[Hashable]] = {}
        self._hits = self._misses = self._invalidations = 0
        self._generation: dict[ScopeKey, int] = {}
        self._epoch = 0

    def get(self, key: Hashable) -> V | None:
        item = self._items.get(key)
        if item is None:
            self._misses += 1
            return None
        expires, value, _ = item
        if self._clock() >= expires:
            self._drop(key)
            self._misses += 1
            return None
        self._items.move_to_end(key)
        self._hits += 1
        return value

    def generations(self, scopes: Iterable[ScopeKey]) -> tuple[int, ...]:
        """Taken before loading a view: ``put`` refuses the view if a scope changed meanwhile."""
        return (self._epoch, *(self._generation.get(s, 0) for s in scopes))

    def put(
        self, key: Hashable, value: V, scopes: Iterable[ScopeKey], seen: tuple[int, ...] | None = None
    ) -> bool:
        """Cache ``value``; return False (and cache nothing) when a scope was written after
        ``seen`` was taken, since the value may predate that write."""
        refs = tuple(scopes)
        if seen is not None and seen != self.generations(refs):
            return False
        if key in self._items:
            self._drop(key)
        self._items[key] = (self._clock() + self._ttl, value, refs)
        for ref in refs:
            self._by_scope.setdefault(ref, set()).add(key)
        while len(self._items) > self._maxsize:
            self._drop(next(iter(self._items)))
        return True

    def invalidate(self, scope: ScopeKey) -> int:
        """Drop every view built from ``scope``; return how many."""
        if len(self._generation) >= _MAX_TRACKED:
            # forget per-scope counters wholesale; the new epoch voids every snapshot taken so far
            self._generation.clear()
            self._epoch += 1
        self._generation[scope] = self._generation.get(scope, 0) + 1
        keys = self._by_scope.pop(scope, set())
        for key in keys:
            self._drop(key)
        self._invalidations += len(keys)
        return len(keys)

    def clear(self) -> None:
        self._invalidations += len(self._items)
        self._items.clear()
        self._by_scope.clear()
        self._generation.clear()
        self._epoch += 1

    def stats(self) -> CacheStats:
        return CacheStats(self._hits, self._misses, len(self._items), self._invalidations)

    def __len__(self) -> int:
        return len(self._items)

    def _drop(self, key: Hashable) -> None:
        item = self._items.pop(key, None)
        if item is None:
            return
        for ref in item[2]:
            bucket = self._by_scope.get(ref)
            if bucket is not None:
                bucket.discard(key)
                if not bucket:
                    del self._by_scope[ref]
