"""Throttling of failed logins, per username and per client address.

The counters live in Django's default cache, which is Redis (see CACHES in
config/settings.py), so that every web process shares them. A counter starts
with the first failure and expires LOGIN_FAILURE_WINDOW_SECONDS later. Once
it reaches its limit, logins for that username or from that address are
rejected until it expires.

NOTE: while Redis is unreachable the cache calls raise, so every login fails
with a server error instead of going unthrottled.
"""

from __future__ import annotations

import hashlib
import logging
import math
import time

from django.conf import settings
from django.core.cache import cache
from django.http import HttpRequest

logger = logging.getLogger(__name__)


def client_address(request: HttpRequest | None) -> str:
    """Return the client's IP address, trusting TRUSTED_PROXY_COUNT proxies.

    Each trusted proxy appends the address it received the request from to
    X-Forwarded-For, so the entry TRUSTED_PROXY_COUNT places from the right is
    the client as seen by the outermost trusted proxy. Entries further left
    were written by the client and are ignored.
    """
    if request is None:
        return ""
    proxies = settings.TRUSTED_PROXY_COUNT
    if proxies > 0:
        forwarded = [
            part.strip()
            for part in request.META.get("HTTP_X_FORWARDED_FOR", "").split(",")
            if part.strip()
        ]
        if len(forwarded) >= proxies:
            return forwarded[-proxies]
    return request.META.get("REMOTE_ADDR", "")


def _cache_key(kind: str, value: str) -> str:
    # Hashed, so any username is a valid cache key and none is stored in clear.
    digest = hashlib.sha256(value.encode()).hexdigest()
    return f"login-failures:{kind}:{digest}"


class LoginThrottle:
    """The failure counters of one login attempt's username and address."""

    def __init__(self, username: str, address: str) -> None:
        self.username = username.strip().lower()
        self.address = address
        self.counters: list[tuple[str, int]] = []
        if self.username:
            self.counters.append(
                (_cache_key("username", self.username), settings.LOGIN_MAX_FAILURES_PER_USERNAME)
            )
        if self.address:
            self.counters.append(
                (_cache_key("address", self.address), settings.LOGIN_MAX_FAILURES_PER_ADDRESS)
            )

    @classmethod
    def for_request(cls, request: HttpRequest | None, username: str) -> LoginThrottle:
        return cls(username, client_address(request))

    def wait_seconds(self) -> int:
        """Return the seconds until a login may be tried again, or 0 when allowed."""
        now = time.time()
        wait = 0.0
        for key, limit in self.counters:
            if (cache.get(f"{key}:count") or 0) < limit:
                continue
            expires = cache.get(f"{key}:expires")
            remaining = settings.LOGIN_FAILURE_WINDOW_SECONDS if expires is None else expires - now
            wait = max(wait, remaining, 1)
        return math.ceil(wait)

    def record_failure(self) -> None:
        window = settings.LOGIN_FAILURE_WINDOW_SECONDS
        for key, limit in self.counters:
            # add() only creates missing keys, so the window starts at the
            # first failure and later failures do not extend it.
            cache.add(f"{key}:expires", time.time() + window, window)
            cache.add(f"{key}:count", 0, window)
            try:
                count = cache.incr(f"{key}:count")
            except ValueError:
                # The counter expired between add() and incr(): a new window.
                cache.set(f"{key}:count", 1, window)
                count = 1
            if count == limit:
                logger.warning(
                    "Login throttled for %s s after %s failed logins for %s",
                    window,
                    count,
                    f"username {self.username!r}" if "username" in key else f"address {self.address}",
                )

    def reset_username(self) -> None:
        """Forget the username's failures after a successful login.

        The address counter stays, so that one valid account does not let a
        client keep guessing the passwords of others.
        """
        if self.username:
            key = _cache_key("username", self.username)
            cache.delete_many([f"{key}:count", f"{key}:expires"])


def describe_wait(seconds: int) -> str:
    minutes = max(1, math.ceil(seconds / 60))
    return f"{minutes} minute" if minutes == 1 else f"{minutes} minutes"
