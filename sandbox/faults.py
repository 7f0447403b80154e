"""Rate limiting and injected faults for PX requests."""

from __future__ import annotations

import dataclasses
import random
import threading
import time

from .config import DROP, SandboxConfig

# Labels of the ``fault`` field in the request log.
FAULT_RATE_LIMIT = "rate_limit"
FAULT_FAIL_NEXT = "fail_next"
FAULT_RATE = "fault_rate"
FAULT_DROP = "drop"
FAULT_SLOW = "slow"


class TokenBucket:
    """Token bucket that refills ``rate`` tokens per second up to ``capacity``."""

    def __init__(self, rate: float, capacity: float, now: float) -> None:
        self.rate = rate
        self.capacity = capacity
        self.tokens = capacity
        self.updated = now

    def take(self, now: float) -> bool:
        """Take one token and return whether one was available."""
        elapsed = max(0.0, now - self.updated)
        self.tokens = min(self.capacity, self.tokens + elapsed * self.rate)
        self.updated = now
        if self.tokens >= 1.0:
            self.tokens -= 1.0
            return True
        return False


class RateLimiter:
    """Per-API-key token buckets holding one second of burst.

    NOTE: PX publishes about 200 requests per second but not whether the limit
    applies per key, per subscription or per IP address. The sandbox counts per key.
    """

    def __init__(self, rate: float) -> None:
        self._lock = threading.Lock()
        self._rate = rate
        self._buckets: dict[str, TokenBucket] = {}

    def set_rate(self, rate: float) -> None:
        """Change the rate and refill every bucket."""
        with self._lock:
            self._rate = rate
            self._buckets.clear()

    def allow(self, api_key: str) -> bool:
        """Take a token for the key and return whether the request may pass.

        A rate of 0 lets every request pass.
        """
        with self._lock:
            if self._rate <= 0:
                return True
            now = time.monotonic()
            bucket = self._buckets.get(api_key)
            if bucket is None:
                capacity = max(self._rate, 1.0)
                bucket = TokenBucket(self._rate, capacity, now)
                self._buckets[api_key] = bucket
            return bucket.take(now)


@dataclasses.dataclass(frozen=True)
class FaultDecision:
    """Injected behaviour for one PX request that passed auth and rate limit.

    ``status`` is the status to return instead of handling the request, ``drop``
    closes the connection without a response, and ``delay_ms`` delays a request
    that is then handled normally.
    """

    label: str
    status: int | None = None
    drop: bool = False
    delay_ms: int = 0


def choose_fault(config: SandboxConfig, rng: random.Random) -> FaultDecision | None:
    """Pick the injected fault for the next PX request, or None.

    ``fail_next`` entries are used first, in order. Then one random draw each
    decides a drop, a fault status and a slow response, in that order. The caller
    must hold the state lock, because this consumes ``config.fail_next``.
    """
    if config.fail_next:
        entry = config.fail_next.pop(0)
        if entry == DROP:
            return FaultDecision(FAULT_FAIL_NEXT, drop=True)
        return FaultDecision(FAULT_FAIL_NEXT, status=int(entry))

    if config.drop_rate > 0 and rng.random() < config.drop_rate:
        return FaultDecision(FAULT_DROP, drop=True)
    if config.fault_rate > 0 and rng.random() < config.fault_rate:
        status = rng.choice(config.fault_statuses)
        return FaultDecision(FAULT_RATE, status=status)
    if config.slow_rate > 0 and rng.random() < config.slow_rate:
        return FaultDecision(FAULT_SLOW, delay_ms=config.slow_ms)
    return None
