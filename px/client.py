"""HTTP client for the Gainsight PX REST API.

Every call goes through `PxClient.request`, which sets the API key header and
a timeout, follows no redirects, reads at most MAX_RESPONSE_BYTES of a body and
turns transport failures into `PxTransportError`.
"""

from __future__ import annotations

import json
import re
import time
from dataclasses import dataclass, field
from typing import Any

import requests
from requests.adapters import HTTPAdapter

REGION_BASE_URLS = {
    "US": "https://api.aptrinsic.com",
    "EU": "https://api-eu.aptrinsic.com",
    "US2": "https://api-us2.aptrinsic.com",
}
API_KEY_HEADER = "X-APTRINSIC-API-KEY"
MAX_RESPONSE_BYTES = 1 * 2**20
DEFAULT_TIMEOUT = 15.0
USER_AGENT = "pxsync/0.1"


class PxTransportError(Exception):
    """The request got no HTTP response: timeout, refused or dropped connection."""


@dataclass
class PxResponse:
    status: int
    text: str
    headers: dict[str, str] = field(default_factory=dict)
    elapsed_ms: float = 0.0
    truncated: bool = False

    @property
    def ok(self) -> bool:
        return 200 <= self.status < 300

    def json(self) -> Any:
        """Return the parsed body, or None when it is empty or not JSON."""
        if not self.text:
            return None
        try:
            return json.loads(self.text)
        except ValueError:
            return None

    @property
    def retry_after(self) -> float | None:
        """Seconds from a numeric Retry-After header, if the response has one."""
        value = self.headers.get("Retry-After") or self.headers.get("retry-after")
        if value is None:
            return None
        try:
            return max(0.0, float(value))
        except ValueError:
            return None

    def error_message(self) -> str:
        """Describe a failed response in one line, whatever shape its body has."""
        return describe_error(self.status, self.text)


def describe_error(status: int, text: str) -> str:
    prefix = f"HTTP {status}"
    if not text.strip():
        return f"{prefix} with an empty body"
    try:
        body = json.loads(text)
    except ValueError:
        body = None
    detail = _json_error_detail(body) if body is not None else None
    if detail is None:
        title = re.search(r"<title>(.*?)</title>", text, re.IGNORECASE | re.DOTALL)
        if title:
            detail = re.sub(r"\s+", " ", title.group(1)).strip()
        else:
            detail = re.sub(r"\s+", " ", text).strip()
    if len(detail) > 300:
        detail = detail[:300] + "…"
    return f"{prefix}: {detail}"


def _json_error_detail(body: Any) -> str | None:
    if isinstance(body, list) and body and isinstance(body[0], dict):
        parts = [
            f"record {item.get('index')}: {item.get('message')}"
            for item in body[:5]
            if isinstance(item, dict)
        ]
        return "; ".join(parts) or None
    if not isinstance(body, dict):
        return None
    error = body.get("externalapierror")
    if isinstance(error, dict):
        sub_errors = error.get("subErrors")
        if isinstance(sub_errors, list) and sub_errors:
            first = sub_errors[0]
            if isinstance(first, dict) and first.get("message"):
                field_name = first.get("field")
                message = str(first["message"])
                return f"{field_name}: {message}" if field_name else message
        if error.get("message"):
            return str(error["message"])
        if error.get("status"):
            return str(error["status"])
    for key in ("errorMessage", "message", "error"):
        if isinstance(body.get(key), str) and body[key]:
            return body[key]
    return None


def is_not_found(response: PxResponse) -> bool:
    return response.status == 404


def is_possible_duplicate(response: PxResponse) -> bool:
    """Tell a 400 "possible duplicate" on create from a validation 400."""
    if response.status != 400:
        return False
    return "duplicate" in response.text.lower()


class PxClient:
    """A connection to one PX subscription; safe to share between threads."""

    def __init__(
        self,
        base_url: str,
        api_key: str,
        *,
        timeout: float = DEFAULT_TIMEOUT,
        pool_size: int = 32,
    ) -> None:
        self.base_url = base_url.rstrip("/")
        self._api_key = api_key
        self.timeout = timeout
        self.session = requests.Session()
        adapter = HTTPAdapter(pool_connections=4, pool_maxsize=pool_size, max_retries=0)
        self.session.mount("https://", adapter)
        self.session.mount("http://", adapter)
        self.session.headers["User-Agent"] = USER_AGENT

    def __repr__(self) -> str:
        return f"PxClient({self.base_url!r})"

    def url(self, path_or_url: str) -> str:
        if path_or_url.startswith(("https://", "http://")):
            return path_or_url
        return self.base_url + path_or_url

    def request(
        self,
        method: str,
        path_or_url: str,
        *,
        json_body: Any = None,
        data: bytes | None = None,
        content_type: str = "application/json",
        headers: list[tuple[str, str]] | None = None,
    ) -> PxResponse:
        """Send one request; raise PxTransportError when no answer arrives."""
        request_headers = {"Accept": "application/json"}
        for name, value in headers or ():
            request_headers[name] = value
        if json_body is not None:
            data = encode_json(json_body)
        if data is not None:
            request_headers["Content-Type"] = content_type
        request_headers[API_KEY_HEADER] = self._api_key
        started = time.perf_counter()
        try:
            response = self.session.request(
                method,
                self.url(path_or_url),
                data=data,
                headers=request_headers,
                timeout=self.timeout,
                allow_redirects=False,
                stream=True,
            )
            try:
                body, truncated = _read_capped(response)
            finally:
                response.close()
        except requests.Timeout:
            raise PxTransportError(
                f"timed out after {self.timeout:g} s waiting for {self.url(path_or_url)}"
            ) from None
        except requests.ConnectionError as exc:
            raise PxTransportError(
                f"connection to {self.url(path_or_url)} failed: {_short(exc)}"
            ) from None
        except requests.RequestException as exc:
            raise PxTransportError(f"request failed: {_short(exc)}") from None
        elapsed_ms = (time.perf_counter() - started) * 1000
        return PxResponse(
            status=response.status_code,
            text=body.decode("utf-8", errors="replace"),
            headers=dict(response.headers),
            elapsed_ms=elapsed_ms,
            truncated=truncated,
        )

    def get_subscription(self) -> PxResponse:
        return self.request("GET", "/v1/admin/subscription")

    def get_attributes(self, object_type: str) -> PxResponse:
        return self.request("GET", f"/v1/admin/model/{object_type}/attributes")

    def close(self) -> None:
        self.session.close()


def encode_json(payload: Any) -> bytes:
    """Encode a body exactly as it is sent and as the sample panel shows it."""
    return json.dumps(payload, ensure_ascii=False, separators=(",", ":")).encode()


def _read_capped(response: requests.Response) -> tuple[bytes, bool]:
    chunks: list[bytes] = []
    size = 0
    for chunk in response.iter_content(chunk_size=65536):
        chunks.append(chunk)
        size += len(chunk)
        if size > MAX_RESPONSE_BYTES:
            return b"".join(chunks)[:MAX_RESPONSE_BYTES], True
    return b"".join(chunks), False


def _short(exc: Exception) -> str:
    text = str(exc)
    # urllib3 wraps the cause in long reprs; the last clause is the useful one.
    match = re.search(r"\(Caused by (\w+)\(", text)
    if match:
        text = match.group(1)
    return text[:200]
