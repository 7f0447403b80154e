"""A request rate shared by every worker process through Redis.

Each credential has one schedule in Redis. A caller reserves the next free
slot and sleeps until it comes, so requests leave evenly spaced at the
credential's rate no matter how many workers on how many machines send them.
A 429 halves the rate for everyone; it then grows back by a tenth of the full
rate each second. A Retry-After header pauses every sender until it passes.
"""

from __future__ import annotations

import logging
import threading
import time
from functools import cache

import redis
from django.conf import settings

logger = logging.getLogger(__name__)

# KEYS: schedule, slowdown, hold. ARGV: full rate (requests per second).
# Returns the milliseconds to wait before sending.
_RESERVE = """
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + tonumber(t[2]) / 1000
local rate = tonumber(ARGV[1])
local factor = 1
local slow = redis.call('HMGET', KEYS[2], 'factor', 'at')
if slow[1] then
  factor = math.min(1, tonumber(slow[1]) + (now - tonumber(slow[2])) / 10000)
end
local interval = 1000 / (rate * factor)
local start = now
local hold = redis.call('GET', KEYS[3])
if hold and tonumber(hold) > start then start = tonumber(hold) end
local next_free = tonumber(redis.call('GET', KEYS[1]) or '0')
if next_free > start then start = next_free end
redis.call('SET', KEYS[1], tostring(start + interval), 'PX', math.ceil(start - now + interval + 60000))
return tostring(start - now)
"""

# KEYS: slowdown, hold. ARGV: retry-after in ms (0 when absent).
_PENALIZE = """
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + tonumber(t[2]) / 1000
local factor = 1
local slow = redis.call('HMGET', KEYS[1], 'factor', 'at')
if slow[1] then
  factor = math.min(1, tonumber(slow[1]) + (now - tonumber(slow[2])) / 10000)
end
factor = math.max(0.02, factor / 2)
redis.call('HSET', KEYS[1], 'factor', tostring(factor), 'at', tostring(now))
redis.call('PEXPIRE', KEYS[1], 120000)
local wait = tonumber(ARGV[1])
if wait > 0 then
  redis.call('SET', KEYS[2], tostring(now + wait), 'PX', math.ceil(wait) + 1000)
end
return tostring(factor)
"""


@cache
def _redis(url: str) -> redis.Redis:
    return redis.Redis.from_url(url)


class SharedRateLimit:
    _last_warning = 0.0
    # The schedule used while Redis is unreachable, shared by the threads of
    # this process: the next free slot per credential, in time.monotonic().
    _local_lock = threading.Lock()
    _local_next: dict[str, float] = {}

    def __init__(self, credential_id: int, rate: float, redis_url: str | None = None):
        if rate <= 0:
            raise ValueError(f"rate must be positive, got {rate!r}")
        self.rate = rate
        client = _redis(redis_url or settings.REDIS_URL)
        prefix = f"pxsync:rate:{credential_id}"
        self.keys = [f"{prefix}:next", f"{prefix}:slow", f"{prefix}:hold"]
        self._reserve = client.register_script(_RESERVE)
        self._penalize = client.register_script(_PENALIZE)

    def acquire(self) -> float:
        """Wait for this process's turn to send; return the seconds waited.

        While Redis is unreachable (restarting, say) the threads of this
        process share a local schedule at the full rate instead, which keeps
        one process within the limit but not several; deliveries go on rather
        than fail.
        """
        try:
            wait_ms = float(self._reserve(keys=self.keys, args=[self.rate]))
        except redis.RedisError as exc:
            self._warn_unshared(exc)
            wait_ms = self._reserve_locally()
        if wait_ms > 0:
            time.sleep(wait_ms / 1000)
        return wait_ms / 1000

    def penalize(self, retry_after: float | None = None) -> float:
        """Slow every sender after a 429; return the new share of the full rate."""
        wait_ms = 0 if retry_after is None else retry_after * 1000
        try:
            factor = float(self._penalize(keys=self.keys[1:], args=[wait_ms]))
        except redis.RedisError as exc:
            self._warn_unshared(exc)
            time.sleep(wait_ms / 1000)
            return 1.0
        logger.debug(
            "Rate limited by PX: slowed %s to %.0f%% of %s requests per second",
            self.keys[0],
            factor * 100,
            self.rate,
        )
        return factor

    def _reserve_locally(self) -> float:
        """Reserve the next slot of this process's own schedule; return ms to wait."""
        with SharedRateLimit._local_lock:
            now = time.monotonic()
            start = max(now, SharedRateLimit._local_next.get(self.keys[0], 0.0))
            SharedRateLimit._local_next[self.keys[0]] = start + 1 / self.rate
        return (start - now) * 1000

    def _warn_unshared(self, exc: Exception) -> None:
        # One warning a minute at most: every request would log otherwise.
        now = time.monotonic()
        if now - SharedRateLimit._last_warning > 60:
            SharedRateLimit._last_warning = now
            logger.warning(
                "Redis unreachable, pacing %s locally: %s", self.keys[0], exc
            )
