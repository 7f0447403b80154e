"""Runtime settings of the sandbox: faults, limits, keys and modes."""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Callable, Mapping
from typing import Any

DEFAULT_API_KEY = "sandbox-key"
DEFAULT_FAULT_STATUSES = (500, 502, 503)

# Entry of ``fail_next`` that closes the connection instead of responding.
DROP = "drop"


class ConfigError(ValueError):
    """Invalid sandbox setting, with the setting's name in the message."""


@dataclasses.dataclass
class SandboxConfig:
    """Sandbox settings that tests may change while the server runs."""

    api_keys: tuple[str, ...] = (DEFAULT_API_KEY,)
    # Requests per second for each API key. 0 turns the limiter off.
    rate_limit: float = 0.0
    # Seconds for a Retry-After header on 429 responses. None sends no header.
    retry_after: int | None = None
    latency_ms: int = 0
    fault_rate: float = 0.0
    fault_statuses: tuple[int, ...] = DEFAULT_FAULT_STATUSES
    drop_rate: float = 0.0
    slow_rate: float = 0.0
    slow_ms: int = 1000
    # Test-only extension: accept a JSON array on POST /v1/events/custom.
    batch_events: bool = False
    # With batch_events, name the invalid elements in the 400 response. When
    # false, the response is a plain validation error without indices.
    batch_error_index: bool = True
    seed: int | None = None
    # Statuses (or "drop") returned to the next PX requests, one entry each.
    fail_next: list[int | str] = dataclasses.field(default_factory=list)
    # Reject customAttributes keys that match no enabled custom definition.
    reject_unknown_attributes: bool = True
    # Maximum number of entries kept in the request log. Older ones are dropped.
    log_limit: int = 100_000

    def to_json(self) -> dict[str, Any]:
        """Return the settings as JSON, with the API keys replaced by their count."""
        data = dataclasses.asdict(self)
        del data["api_keys"]
        data["api_key_count"] = len(self.api_keys)
        data["fault_statuses"] = list(self.fault_statuses)
        return data


def _expect_bool(name: str, value: Any) -> bool:
    if not isinstance(value, bool):
        raise ConfigError(f"{name} must be true or false, got {value!r}")
    return value


def _expect_int(name: str, value: Any, minimum: int = 0) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
        raise ConfigError(f"{name} must be an integer >= {minimum}, got {value!r}")
    return value


def _expect_share(name: str, value: Any) -> float:
    is_number = isinstance(value, int | float) and not isinstance(value, bool)
    if not is_number or not 0.0 <= value <= 1.0:
        raise ConfigError(f"{name} must be a number from 0 to 1, got {value!r}")
    return float(value)


def _expect_rate(name: str, value: Any) -> float:
    is_number = isinstance(value, int | float) and not isinstance(value, bool)
    if not is_number or not math.isfinite(value) or value < 0:
        raise ConfigError(f"{name} must be a number >= 0, got {value!r}")
    return float(value)


def _expect_status(name: str, value: Any) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise ConfigError(f"{name} entries must be HTTP statuses, got {value!r}")
    if not 400 <= value <= 599:
        raise ConfigError(f"{name} entries must be from 400 to 599, got {value}")
    return value


def _parse_api_keys(name: str, value: Any) -> tuple[str, ...]:
    if isinstance(value, str) or not isinstance(value, list | tuple) or not value:
        raise ConfigError(f"{name} must be a non-empty list of strings")
    for key in value:
        if not isinstance(key, str) or not key:
            raise ConfigError(f"{name} must contain only non-empty strings")
    return tuple(value)


def _parse_retry_after(name: str, value: Any) -> int | None:
    if value is None:
        return None
    return _expect_int(name, value)


def _parse_fault_statuses(name: str, value: Any) -> tuple[int, ...]:
    if not isinstance(value, list | tuple) or not value:
        raise ConfigError(f"{name} must be a non-empty list of HTTP statuses")
    return tuple(_expect_status(name, status) for status in value)


def _parse_seed(name: str, value: Any) -> int | None:
    if value is None:
        return None
    return _expect_int(name, value, minimum=-(2**63))


def _parse_fail_next(name: str, value: Any) -> list[int | str]:
    if not isinstance(value, list | tuple):
        raise ConfigError(f'{name} must be a list of HTTP statuses or "{DROP}"')
    entries: list[int | str] = []
    for entry in value:
        if entry == DROP:
            entries.append(DROP)
        else:
            entries.append(_expect_status(name, entry))
    return entries


_PARSERS: dict[str, Callable[[str, Any], Any]] = {
    "api_keys": _parse_api_keys,
    "rate_limit": _expect_rate,
    "retry_after": _parse_retry_after,
    "latency_ms": _expect_int,
    "fault_rate": _expect_share,
    "fault_statuses": _parse_fault_statuses,
    "drop_rate": _expect_share,
    "slow_rate": _expect_share,
    "slow_ms": _expect_int,
    "batch_events": _expect_bool,
    "batch_error_index": _expect_bool,
    "seed": _parse_seed,
    "fail_next": _parse_fail_next,
    "reject_unknown_attributes": _expect_bool,
    "log_limit": lambda name, value: _expect_int(name, value, minimum=1),
}

CONFIG_KEYS = frozenset(_PARSERS)


def parse_config_changes(changes: Mapping[str, Any]) -> dict[str, Any]:
    """Validate setting changes and return them in their stored types.

    Raises ConfigError for an unknown name or an invalid value.
    """
    parsed: dict[str, Any] = {}
    for name, value in changes.items():
        parser = _PARSERS.get(name)
        if parser is None:
            known = ", ".join(sorted(CONFIG_KEYS))
            raise ConfigError(f"unknown setting {name!r}. Known settings: {known}")
        parsed[name] = parser(name, value)
    return parsed
