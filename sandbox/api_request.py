"""Parsed form of one HTTP request as the sandbox handlers see it."""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Mapping
from typing import Any
from urllib.parse import parse_qs, unquote


class InvalidRequest(ValueError):
    """Request that cannot be read: bad JSON, bad encoding or a bad parameter."""


_UNSET = object()


def _reject_constant(name: str) -> Any:
    # JSON has no NaN or Infinity, and Jackson rejects them by default.
    raise ValueError(f"{name} is not valid JSON")


@dataclasses.dataclass
class ApiRequest:
    """Method, path, query, headers and raw body of one request."""

    method: str
    path: str
    query_string: str
    headers: Mapping[str, str]
    body: bytes
    _json: Any = dataclasses.field(default=_UNSET, repr=False)
    _json_error: str | None = dataclasses.field(default=None, repr=False)

    @property
    def query(self) -> dict[str, list[str]]:
        """Return the query parameters, each with all its values."""
        return parse_qs(self.query_string, keep_blank_values=True)

    def query_value(self, name: str) -> str | None:
        """Return the first value of a query parameter, or None."""
        values = self.query.get(name)
        return values[0] if values else None

    def path_segments(self) -> list[str]:
        """Split the path at "/" and percent-decode each segment as UTF-8.

        Decoding after splitting keeps an encoded "/" (%2F) inside its segment.
        A "+" stays a plus sign, because only query strings use it for a space.
        """
        segments = self.path.split("/")[1:]
        try:
            return [unquote(segment, errors="strict") for segment in segments]
        except UnicodeDecodeError as error:
            raise InvalidRequest(
                f"path {self.path!r} is not valid percent-encoded UTF-8"
            ) from error

    def json(self) -> Any:
        """Parse the body as JSON. Raise InvalidRequest if missing or malformed."""
        if self._json is _UNSET:
            self._parse_json()
        if self._json_error is not None:
            raise InvalidRequest(self._json_error)
        return self._json

    def body_for_log(self) -> Any:
        """Return the body as parsed JSON, else as text, and None when empty."""
        if not self.body:
            return None
        if self._json is _UNSET:
            self._parse_json()
        if self._json_error is None:
            return self._json
        return self.body.decode("utf-8", errors="replace")

    def _parse_json(self) -> None:
        self._json = None
        if not self.body:
            self._json_error = "Required request body is missing"
            return
        try:
            text = self.body.decode("utf-8")
            self._json = json.loads(text, parse_constant=_reject_constant)
        except UnicodeDecodeError:
            self._json_error = "Malformed JSON request: body is not valid UTF-8"
        except ValueError as error:
            self._json_error = f"Malformed JSON request: {error}"
