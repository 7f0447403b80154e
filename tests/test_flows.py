"""Request flows of the endpoint templates, run against the sandbox over HTTP.

Each test sends one body through `px.flows.run_flow` with a real `PxClient`
and checks both the outcome and the exact requests the sandbox logged.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from px import flows
from px.client import PxClient, PxResponse, encode_json
from tests.conftest import sandbox_requests, sandbox_users
from tests.services import SANDBOX, SANDBOX_KEY

PRODUCT_KEY = "AP-TEST-2"


@pytest.fixture
def client() -> Iterator[PxClient]:
    px_client = PxClient(SANDBOX.url, SANDBOX_KEY, timeout=10)
    yield px_client
    px_client.close()


def body(payload: dict[str, Any]) -> bytes:
    """Encode a body as the engine does, as compact UTF-8 with non-ASCII characters unescaped."""
    return encode_json(payload)


def store_user(identify_id: str, **fields: Any) -> None:
    """Put a user straight into the sandbox state, without a logged request."""
    with SANDBOX.state.lock:
        SANDBOX.state.users[identify_id] = {
            "identifyId": identify_id,
            "id": identify_id,
            "propertyKeys": [PRODUCT_KEY],
            **fields,
        }


def exchanges() -> list[tuple[str, str, int | None]]:
    return [(entry["method"], entry["path"], entry["status"]) for entry in sandbox_requests()]


class CreateUserAfterFirstNotFound:
    """Pass requests to a PxClient, and store the user when a PUT returns 404.

    This reproduces another writer creating the user between the update and
    the create of an upsert.
    """

    def __init__(self, client: PxClient, identify_id: str):
        self.client = client
        self.identify_id = identify_id
        self.done = False

    def request(self, method: str, path: str, **kwargs: Any) -> PxResponse:
        response = self.client.request(method, path, **kwargs)
        if method == "PUT" and response.status == 404 and not self.done:
            store_user(self.identify_id, email="other-writer@example.com")
            self.done = True
        return response


def test_upsert_user_existing_204(client: PxClient) -> None:
    store_user("u-1", email="old@example.com")

    result = flows.run_flow(
        client, "upsert_user", body({"identifyId": "u-1", "propertyKeys": [PRODUCT_KEY], "email": "new@example.com"})
    )

    assert result.outcome == flows.OK
    assert result.message == ""
    assert exchanges() == [("PUT", "/v1/users/update", 204)]
    assert sandbox_users()["u-1"]["email"] == "new@example.com"


def test_upsert_user_missing_creates(client: PxClient) -> None:
    payload = {"identifyId": "u-2", "propertyKeys": [PRODUCT_KEY], "firstName": "Ada"}

    result = flows.run_flow(client, "upsert_user", body(payload))

    assert result.outcome == flows.OK
    assert exchanges() == [("PUT", "/v1/users/update", 404), ("POST", "/v1/users", 201)]
    assert [entry["body"] for entry in sandbox_requests()] == [payload, payload]
    assert sandbox_users()["u-2"]["firstName"] == "Ada"
    assert [attempt.response.status for attempt in result.attempts] == [404, 201]


def test_upsert_user_duplicate_race_updates(client: PxClient) -> None:
    payload = {"identifyId": "u-3", "propertyKeys": [PRODUCT_KEY], "email": "mine@example.com"}
    racing = CreateUserAfterFirstNotFound(client, "u-3")

    result = flows.run_flow(racing, "upsert_user", body(payload))

    assert racing.done
    assert result.outcome == flows.OK
    assert exchanges() == [
        ("PUT", "/v1/users/update", 404),
        ("POST", "/v1/users", 400),
        ("PUT", "/v1/users/update", 204),
    ]
    create_answer = result.attempts[1].response
    assert "possible duplicate" in create_answer.text
    assert sandbox_users()["u-3"]["email"] == "mine@example.com"


def test_upsert_user_invalid_create_fails(client: PxClient) -> None:
    # The update requires only identifyId, and the create also propertyKeys.
    # The create's validation 400 is not a duplicate, so no second PUT follows.
    result = flows.run_flow(client, "upsert_user", body({"identifyId": "u-4", "email": "x@example.com"}))

    assert result.outcome == flows.FAIL
    assert "propertyKeys" in result.message
    assert result.message.startswith("HTTP 400")
    assert exchanges() == [("PUT", "/v1/users/update", 404), ("POST", "/v1/users", 400)]
    assert "u-4" not in sandbox_users()


def test_upsert_account_missing_creates(client: PxClient) -> None:
    payload = {"id": "acc-1", "name": "Acme", "propertyKeys": [PRODUCT_KEY]}

    result = flows.run_flow(client, "upsert_account", body(payload))

    assert result.outcome == flows.OK
    assert exchanges() == [("PUT", "/v1/accounts/update", 404), ("POST", "/v1/accounts", 201)]
    assert SANDBOX.state.snapshot()["accounts"][0]["name"] == "Acme"


def test_update_user_missing_fails(client: PxClient) -> None:
    result = flows.run_flow(client, "update_user", body({"identifyId": "ghost", "propertyKeys": [PRODUCT_KEY]}))

    assert result.outcome == flows.FAIL
    assert result.message.startswith("user not found: HTTP 404")
    assert "ghost" in result.message
    assert exchanges() == [("PUT", "/v1/users/update", 404)]
    assert sandbox_requests(method="POST") == []
    assert sandbox_users() == {}


def test_update_account_missing_fails(client: PxClient) -> None:
    result = flows.run_flow(
        client, "update_account", body({"id": "acc-ghost", "name": "Nobody", "propertyKeys": [PRODUCT_KEY]})
    )

    assert result.outcome == flows.FAIL
    assert result.message.startswith("account not found: HTTP 404")
    assert exchanges() == [("PUT", "/v1/accounts/update", 404)]
    assert sandbox_requests(method="POST") == []


def test_update_user_existing_204(client: PxClient) -> None:
    store_user("u-5")

    result = flows.run_flow(client, "update_user", body({"identifyId": "u-5", "title": "CTO"}))

    assert result.outcome == flows.OK
    assert exchanges() == [("PUT", "/v1/users/update", 204)]
    assert sandbox_users()["u-5"]["title"] == "CTO"


def test_track_event_201(client: PxClient) -> None:
    payload = {
        "identifyId": "u-1",
        "propertyKey": PRODUCT_KEY,
        "eventName": "Search",
        "date": 1560499354771,
        "userType": "USER",
        "attributes": {"Source": "CSV"},
    }

    result = flows.run_flow(client, "track_event", body(payload))

    assert result.outcome == flows.OK
    assert exchanges() == [("POST", "/v1/events/custom", 201)]
    assert sandbox_requests()[0]["body"] == payload
    assert SANDBOX.state.snapshot()["events"] == [payload]


def test_wrong_key_auth(client: PxClient) -> None:
    wrong = PxClient(SANDBOX.url, "not-the-sandbox-key", timeout=10)
    try:
        result = flows.run_flow(wrong, "upsert_user", body({"identifyId": "u-6", "propertyKeys": [PRODUCT_KEY]}))
    finally:
        wrong.close()

    assert result.outcome == flows.AUTH
    assert result.message.startswith("authentication failed: HTTP 401")
    # A rejected key must not go on to the create request.
    assert exchanges() == [("PUT", "/v1/users/update", 401)]
    assert sandbox_users() == {}


def test_server_error_retry(client: PxClient) -> None:
    SANDBOX.configure(fail_next=[503])

    result = flows.run_flow(client, "upsert_user", body({"identifyId": "u-7", "propertyKeys": [PRODUCT_KEY]}))

    assert result.outcome == flows.RETRY
    assert result.message == "HTTP 503: 503 Service Unavailable"
    assert exchanges() == [("PUT", "/v1/users/update", 503)]


@pytest.mark.parametrize(
    "identify_id",
    ["team/alice", "a+b@example.com", "100%", "first last", "jürgen-ß-東京", " padded "],
)
def test_odd_ids_reach_sandbox_unchanged(client: PxClient, identify_id: str) -> None:
    payload = {"identifyId": identify_id, "propertyKeys": [PRODUCT_KEY]}

    created = flows.run_flow(client, "upsert_user", body(payload))
    updated = flows.run_flow(client, "upsert_user", body({**payload, "title": "Engineer"}))

    assert created.outcome == flows.OK
    assert updated.outcome == flows.OK
    # The id travels in the body, so the paths never carry it.
    assert exchanges() == [
        ("PUT", "/v1/users/update", 404),
        ("POST", "/v1/users", 201),
        ("PUT", "/v1/users/update", 204),
    ]
    assert [entry["body"]["identifyId"] for entry in sandbox_requests()] == [identify_id] * 3
    assert list(sandbox_users()) == [identify_id]
    assert sandbox_users()[identify_id]["title"] == "Engineer"
