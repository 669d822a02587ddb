"""A fixed-window request counter in Django's ``default`` cache.

Every process that serves the counted pages must share that cache (Redis or Memcached in
production): Django's local-memory cache counts in each process apart, which multiplies the
limit by the number of processes.
"""

from __future__ import annotations

import hashlib

from django.core.cache import cache
from django.utils import timezone


def hit(scope: str, key: str, rate: tuple[int, int] | None) -> int | None:
    """Count one request of ``key`` (a client IP, a token...) in ``scope`` against ``rate``,
    ``(max requests, window seconds)``; ``None`` for no limit.

    Returns ``None`` while the request is within the rate, else the seconds until the window
    ends (for ``Retry-After``). Windows start at multiples of their length since the epoch.
    """
    if rate is None:
        return None
    limit, seconds = rate
    now = int(timezone.now().timestamp())
    window = now // seconds
    # Hashed: a key from a URL may be long or hold characters a cache key must not.
    digest = hashlib.sha256(key.encode()).hexdigest()[:32]
    cache_key = f"renewals:ratelimit:{scope}:{digest}:{window}"
    cache.add(cache_key, 0, timeout=seconds)
    try:
        count = cache.incr(cache_key)
    except ValueError:  # evicted since the add: this request alone counts
        count = 1
    return None if count <= limit else (window + 1) * seconds - now
