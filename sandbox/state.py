"""In-memory data, settings, request log and counters of one sandbox."""

from __future__ import annotations

import collections
import copy
import dataclasses
import random
import threading
import time
import uuid
from collections.abc import Mapping
from typing import Any

from .config import ConfigError, SandboxConfig, parse_config_changes
from .defaults import default_attributes, default_subscription, normalize_attributes
from .faults import FAULT_RATE_LIMIT, FaultDecision, RateLimiter, choose_fault

ATTRIBUTE_SETTINGS = {"user_attributes": "user", "account_attributes": "account"}

# Open list cursors kept at once. The oldest is forgotten first.
MAX_SCROLLS = 1000


def now_ms() -> int:
    """Return the current time in epoch milliseconds."""
    return time.time_ns() // 1_000_000


@dataclasses.dataclass
class ScrollCursor:
    """Records matched by the first page of a list request and the read position."""

    records: list[dict[str, Any]]
    offset: int = 0


class SandboxState:
    """Data, settings and request log shared by the handler threads.

    Every read or change must hold ``lock``. In-process tests may read the
    dictionaries directly while no request is in flight, or call ``snapshot()``.
    """

    def __init__(self, config: SandboxConfig) -> None:
        self.lock = threading.RLock()
        self.config = config
        self.random = random.Random(config.seed)
        self.rate_limiter = RateLimiter(config.rate_limit)
        self.subscription = default_subscription()
        self.user_attributes = default_attributes("user")
        self.account_attributes = default_attributes("account")
        self.users: dict[str, dict[str, Any]] = {}
        self.accounts: dict[str, dict[str, Any]] = {}
        self.events: list[dict[str, Any]] = []
        self.requests: collections.deque[dict[str, Any]] = collections.deque(
            maxlen=config.log_limit
        )
        self._next_seq = 1
        self._scrolls: collections.OrderedDict[str, ScrollCursor] = (
            collections.OrderedDict()
        )
        self._reset_counters()

    def _reset_counters(self) -> None:
        self.total_requests = 0
        self.status_counts: collections.Counter[str] = collections.Counter()
        self.fault_counts: collections.Counter[str] = collections.Counter()
        self.per_second: collections.Counter[int] = collections.Counter()

    # Authentication and faults

    def is_valid_key(self, api_key: str | None) -> bool:
        """Return whether the key is one of the configured API keys."""
        with self.lock:
            return api_key is not None and api_key in self.config.api_keys

    def draw_fault(self) -> FaultDecision | None:
        """Pick the injected fault for the next PX request, or None."""
        with self.lock:
            return choose_fault(self.config, self.random)

    def attributes(self, model: str) -> list[dict[str, Any]]:
        """Return the attribute definitions of "user" or "account"."""
        with self.lock:
            if model == "user":
                return self.user_attributes
            return self.account_attributes

    # Request log and counters

    def record_request(
        self,
        *,
        received: float,
        method: str,
        path: str,
        query: str,
        body: Any,
        status: int | None,
        key_valid: bool,
        fault: str | None,
    ) -> dict[str, Any]:
        """Append a PX request to the log, update the counters, return the entry.

        ``received`` is in epoch seconds. ``status`` is None for a dropped
        connection. Sequence numbers are given in logging order and keep
        growing across resets.
        """
        with self.lock:
            entry = {
                "seq": self._next_seq,
                "time": received,
                "method": method,
                "path": path,
                "query": query,
                "body": body,
                "status": status,
                "key_valid": key_valid,
                "fault": fault,
            }
            self._next_seq += 1
            self.requests.append(entry)
            self.total_requests += 1
            self.status_counts["dropped" if status is None else str(status)] += 1
            if fault is not None:
                self.fault_counts[fault] += 1
            self.per_second[int(received)] += 1
            return entry

    def requests_since(self, seq: int = 0) -> list[dict[str, Any]]:
        """Return copies of the logged requests whose sequence number exceeds seq."""
        with self.lock:
            return [
                copy.deepcopy(entry) for entry in self.requests if entry["seq"] > seq
            ]

    def stats(self) -> dict[str, Any]:
        """Return request counters and record counts."""
        with self.lock:
            histogram = [
                {"second": second, "count": count}
                for second, count in sorted(self.per_second.items())
            ]
            return {
                "total_requests": self.total_requests,
                "by_status": dict(sorted(self.status_counts.items())),
                "status_429": self.status_counts.get("429", 0),
                "rate_limited": self.fault_counts.get(FAULT_RATE_LIMIT, 0),
                "faults": dict(sorted(self.fault_counts.items())),
                "per_second": histogram,
                "users": len(self.users),
                "accounts": len(self.accounts),
                "events": len(self.events),
            }

    # Data

    def snapshot(self) -> dict[str, Any]:
        """Return deep copies of the stored users, accounts and events."""
        with self.lock:
            return {
                "users": copy.deepcopy(list(self.users.values())),
                "accounts": copy.deepcopy(list(self.accounts.values())),
                "events": copy.deepcopy(self.events),
            }

    def reset(self) -> None:
        """Clear the data, the request log, the counters and the rate buckets.

        Settings and attribute definitions stay. The random generator restarts
        from the configured seed.
        """
        with self.lock:
            self.users.clear()
            self.accounts.clear()
            self.events.clear()
            self.requests.clear()
            self._scrolls.clear()
            self._reset_counters()
            self.random = random.Random(self.config.seed)
            self.rate_limiter.set_rate(self.config.rate_limit)

    # Settings

    def configure(self, changes: Mapping[str, Any]) -> dict[str, Any]:
        """Merge setting changes into the running configuration.

        Every change is validated before any is applied. Raises ConfigError.
        Returns the resulting settings as ``config_json()`` does.
        """
        if not isinstance(changes, Mapping):
            raise ConfigError("settings must be a JSON object")

        plain_changes = {
            name: value
            for name, value in changes.items()
            if name not in ATTRIBUTE_SETTINGS
        }
        parsed = parse_config_changes(plain_changes)
        definitions = {
            ATTRIBUTE_SETTINGS[name]: normalize_attributes(
                ATTRIBUTE_SETTINGS[name], value, now_ms=now_ms()
            )
            for name, value in changes.items()
            if name in ATTRIBUTE_SETTINGS
        }

        with self.lock:
            self.config = dataclasses.replace(self.config, **parsed)
            if "seed" in parsed:
                self.random = random.Random(parsed["seed"])
            if "rate_limit" in parsed:
                self.rate_limiter.set_rate(parsed["rate_limit"])
            if "log_limit" in parsed:
                self.requests = collections.deque(
                    self.requests, maxlen=parsed["log_limit"]
                )
            if "user" in definitions:
                self.user_attributes = definitions["user"]
            if "account" in definitions:
                self.account_attributes = definitions["account"]
            return self.config_json()

    def config_json(self) -> dict[str, Any]:
        """Return the settings and attribute definitions, without the API keys."""
        with self.lock:
            data = self.config.to_json()
            data["user_attributes"] = copy.deepcopy(self.user_attributes)
            data["account_attributes"] = copy.deepcopy(self.account_attributes)
            return data

    # List cursors

    def open_scroll(self, records: list[dict[str, Any]]) -> tuple[str, ScrollCursor]:
        """Store the records of a new list request under a fresh scroll id."""
        with self.lock:
            scroll_id = uuid.uuid4().hex
            cursor = ScrollCursor(records)
            self._scrolls[scroll_id] = cursor
            while len(self._scrolls) > MAX_SCROLLS:
                self._scrolls.popitem(last=False)
            return scroll_id, cursor

    def find_scroll(self, scroll_id: str) -> ScrollCursor | None:
        """Return the cursor of a scroll id, or None when it is unknown or closed."""
        with self.lock:
            return self._scrolls.get(scroll_id)

    def close_scroll(self, scroll_id: str) -> None:
        """Forget a scroll id."""
        with self.lock:
            self._scrolls.pop(scroll_id, None)
