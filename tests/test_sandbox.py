"""Tests of the PX sandbox over real HTTP on 127.0.0.1."""

from __future__ import annotations

import selectors
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import quote

import pytest
import requests

from sandbox import DEFAULT_PRODUCT_KEY, SandboxServer

REPO_ROOT = Path(__file__).resolve().parents[1]
API_KEY = "test-key"
KEY_HEADER = "X-APTRINSIC-API-KEY"


@pytest.fixture
def server() -> Iterator[SandboxServer]:
    sandbox = SandboxServer(port=0, api_keys=[API_KEY], seed=7).start()
    yield sandbox
    sandbox.stop()


@pytest.fixture
def http() -> Iterator[requests.Session]:
    session = requests.Session()
    session.headers[KEY_HEADER] = API_KEY
    yield session
    session.close()


def user_body(identify_id: str = "u-1", **fields: Any) -> dict[str, Any]:
    return {"identifyId": identify_id, "propertyKeys": [DEFAULT_PRODUCT_KEY], **fields}


def account_body(account_id: str = "acc-1", **fields: Any) -> dict[str, Any]:
    return {
        "id": account_id,
        "name": "Acme",
        "propertyKeys": [DEFAULT_PRODUCT_KEY],
        **fields,
    }


def event_body(**fields: Any) -> dict[str, Any]:
    return {
        "identifyId": "u-1",
        "eventName": "Report Exported",
        "propertyKey": DEFAULT_PRODUCT_KEY,
        "userType": "USER",
        **fields,
    }


def error_fields(response: requests.Response) -> list[str]:
    sub_errors = response.json()["externalapierror"]["subErrors"] or []
    return [error["field"] for error in sub_errors]


# Authentication


def test_auth_missing_key_401(server: SandboxServer) -> None:
    response = requests.get(f"{server.url}/v1/admin/subscription")
    assert response.status_code == 401
    error = response.json()["externalapierror"]
    assert error["status"] == "UNAUTHORIZED"
    assert "Authentication failed in loginAwareAuthentication" in error["message"]


def test_auth_unknown_key_401(server: SandboxServer) -> None:
    response = requests.get(f"{server.url}/v1/users", headers={KEY_HEADER: "not-a-key"})
    assert response.status_code == 401
    assert response.json()["externalapierror"]["status"] == "UNAUTHORIZED"


def test_auth_checked_before_routing(server: SandboxServer) -> None:
    response = requests.get(f"{server.url}/v1/no-such-endpoint")
    assert response.status_code == 401


# Admin endpoints


def test_subscription_lists_product_key(
    server: SandboxServer, http: requests.Session
) -> None:
    response = http.get(f"{server.url}/v1/admin/subscription")
    assert response.status_code == 200
    products = response.json()["products"]
    keys = [key["productKey"] for product in products for key in product["productKeys"]]
    assert keys == [DEFAULT_PRODUCT_KEY]


def test_attributes_user_definitions(
    server: SandboxServer, http: requests.Session
) -> None:
    response = http.get(f"{server.url}/v1/admin/model/user/attributes")
    assert response.status_code == 200
    types = {item["apiName"]: item["type"] for item in response.json()}
    assert types == {
        "plan": "STRING",
        "trialEnds": "DATE_TIME",
        "seats": "NUMBER",
        "beta": "BOOLEAN",
    }


def test_attributes_definition_fields(
    server: SandboxServer, http: requests.Session
) -> None:
    response = http.get(f"{server.url}/v1/admin/model/account/attributes")
    definition = response.json()[0]
    assert set(definition) == {
        "id",
        "name",
        "apiName",
        "internalName",
        "description",
        "type",
        "state",
        "origin",
        "createdDate",
        "modifiedDate",
        "defaultValue",
    }
    assert definition["state"] == "ENABLED"
    assert definition["origin"] == "CUSTOM"


def test_attributes_unknown_type_404(
    server: SandboxServer, http: requests.Session
) -> None:
    response = http.get(f"{server.url}/v1/admin/model/widget/attributes")
    assert response.status_code == 404
    assert response.json()["externalapierror"]["message"] == "Type not found"


# Users


def test_user_create_201(server: SandboxServer, http: requests.Session) -> None:
    response = http.post(f"{server.url}/v1/users", json=user_body(email="a@b.com"))
    assert response.status_code == 201
    assert server.state.users["u-1"]["email"] == "a@b.com"


def test_user_create_duplicate_400(
    server: SandboxServer, http: requests.Session
) -> None:
    http.post(f"{server.url}/v1/users", json=user_body())
    response = http.post(f"{server.url}/v1/users", json=user_body())
    assert response.status_code == 400
    assert "possible duplicate" in response.json()["externalapierror"]["message"]


def test_user_create_empty_property_keys_400(
    server: SandboxServer, http: requests.Session
) -> None:
    response = http.post(f"{server.url}/v1/users", json=user_body(propertyKeys=[]))
    assert response.status_code == 400
    assert error_fields(response) == ["propertyKeys"]


def test_user_create_missing_identify_id_400(
    server: SandboxServer, http: requests.Session
) -> None:
    response = http.post(
        f"{server.url}/v1/users", json={"propertyKeys": [DEFAULT_PRODUCT_KEY]}
    )
    assert response.status_code == 400
    assert error_fields(response) == ["identifyId"]


def test_user_create_array_body_400(
    server: SandboxServer, http: requests.Session
) -> None:
    response = http.post(f"{server.url}/v1/users", json=[user_body()])
    assert response.status_code == 400
    assert server.state.users == {}


def test_user_update_merges_204(server: SandboxServer, http: requests.Session) -> None:
    http.post(
        f"{server.url}/v1/users",
        json=user_body(email="a@b.com", customAttributes={"plan": "gold"}),
    )
    response = http.put(
        f"{server.url}/v1/users/update",
        json={
            "identifyId": "u-1",
            "firstName": "Ann",
            "customAttributes": {"seats": 3},
        },
    )
    assert response.status_code == 204
    assert response.content == b""
    user = server.state.users["u-1"]
    assert user["email"] == "a@b.com"
    assert user["firstName"] == "Ann"
    assert user["customAttributes"] == {"plan": "gold", "seats": 3}


def test_user_update_missing_404_body(
    server: SandboxServer, http: requests.Session
) -> None:
    response = http.put(
        f"{server.url}/v1/users/update", json=user_body("absent-id", email="x@y.z")
    )
    assert response.status_code == 404
    assert response.json() == {
        "externalapierror": {
            "status": "NOT_FOUND",
            "message": "User was not found for parameters {id=absent-id}",
            "debugMessage": None,
            "subErrors": None,
        }
    }


def test_user_update_without_id_400(
    server: SandboxServer, http: requests.Session
) -> None:
    response = http.put(f"{server.url}/v1/users/update", json={"email": "x@y.z"})
    assert response.status_code == 400
    assert error_fields(response) == ["identifyId"]


SPECIAL_IDS = [
    "team/alice",
    "alice+tag@example.com",
    "100%done",
    "first last",
    "josé-ünïcødé-✓",
    "update",
]


@pytest.mark.parametrize("identify_id", SPECIAL_IDS)
def test_user_path_get_decodes_id(
    server: SandboxServer, http: requests.Session, identify_id: str
) -> None:
    http.post(f"{server.url}/v1/users", json=user_body(identify_id))
    response = http.get(f"{server.url}/v1/users/{quote(identify_id, safe='')}")
    assert response.status_code == 200
    assert response.json()["identifyId"] == identify_id


@pytest.mark.parametrize("identify_id", SPECIAL_IDS[:-1])
def test_user_path_put_decodes_id(
    server: SandboxServer, http: requests.Session, identify_id: str
) -> None:
    http.post(f"{server.url}/v1/users", json=user_body(identify_id))
    response = http.put(
        f"{server.url}/v1/users/{quote(identify_id, safe='')}", json={"title": "CTO"}
    )
    assert response.status_code == 204
    assert server.state.users[identify_id]["title"] == "CTO"


def test_user_path_get_missing_404(
    server: SandboxServer, http: requests.Session
) -> None:
    response = http.get(f"{server.url}/v1/users/nobody")
    assert response.status_code == 404
    assert response.json()["externalapierror"]["status"] == "NOT_FOUND"


def test_user_path_put_missing_404(
    server: SandboxServer, http: requests.Session
) -> None:
    response = http.put(f"{server.url}/v1/users/nobody", json={"title": "CTO"})
    assert response.status_code == 404


def test_user_list_pages_with_scroll_id(
    server: SandboxServer, http: requests.Session
) -> None:
    for index in range(5):
        http.post(f"{server.url}/v1/users", json=user_body(f"u-{index}"))

    first = http.get(f"{server.url}/v1/users", params={"pageSize": 2}).json()
    second = http.get(
        f"{server.url}/v1/users", params={"pageSize": 2, "scrollId": first["scrollId"]}
    ).json()
    third = http.get(
        f"{server.url}/v1/users", params={"pageSize": 2, "scrollId": second["scrollId"]}
    ).json()

    assert first["totalHits"] == 5
    assert [user["identifyId"] for user in first["users"]] == ["u-0", "u-1"]
    assert [user["identifyId"] for user in second["users"]] == ["u-2", "u-3"]
    assert [user["identifyId"] for user in third["users"]] == ["u-4"]
    assert third["scrollId"] is None


def test_user_list_page_size_over_max_400(
    server: SandboxServer, http: requests.Session
) -> None:
    response = http.get(f"{server.url}/v1/users", params={"pageSize": 1001})
    assert response.status_code == 400


def test_user_list_filter_ignores_case(
    server: SandboxServer, http: requests.Session
) -> None:
    http.post(f"{server.url}/v1/users", json=user_body("u-1", email="Ann@Example.com"))
    http.post(f"{server.url}/v1/users", json=user_body("u-2", email="bob@example.com"))
    response = http.get(
        f"{server.url}/v1/users", params={"filter": "email==ann@example.com"}
    )
    assert [user["identifyId"] for user in response.json()["users"]] == ["u-1"]


# Accounts


@pytest.mark.parametrize("missing", ["id", "name", "propertyKeys"])
def test_account_create_missing_field_400(
    server: SandboxServer, http: requests.Session, missing: str
) -> None:
    body = account_body()
    del body[missing]
    response = http.post(f"{server.url}/v1/accounts", json=body)
    assert response.status_code == 400
    assert error_fields(response) == [missing]


def test_account_create_and_get(server: SandboxServer, http: requests.Session) -> None:
    created = http.post(f"{server.url}/v1/accounts", json=account_body(industry="IT"))
    http.post(f"{server.url}/v1/users", json=user_body(accountId="acc-1"))
    response = http.get(f"{server.url}/v1/accounts/acc-1")
    assert created.status_code == 201
    assert response.json()["industry"] == "IT"
    assert response.json()["numberOfUsers"] == 1


def test_account_update_missing_404(
    server: SandboxServer, http: requests.Session
) -> None:
    response = http.put(f"{server.url}/v1/accounts/update", json=account_body("nope"))
    assert response.status_code == 404
    assert response.json()["externalapierror"]["message"] == (
        "Account was not found for parameters {id=nope}"
    )


def test_account_update_by_path_204(
    server: SandboxServer, http: requests.Session
) -> None:
    http.post(f"{server.url}/v1/accounts", json=account_body())
    response = http.put(f"{server.url}/v1/accounts/acc-1", json={"plan": "Pro"})
    assert response.status_code == 204
    assert server.state.accounts["acc-1"]["plan"] == "Pro"
    assert server.state.accounts["acc-1"]["name"] == "Acme"


def test_account_list_shape(server: SandboxServer, http: requests.Session) -> None:
    http.post(f"{server.url}/v1/accounts", json=account_body())
    body = http.get(f"{server.url}/v1/accounts").json()
    assert set(body) == {"accounts", "totalHits", "scrollId"}
    assert body["totalHits"] == 1


# Custom events


def test_event_create_201(server: SandboxServer, http: requests.Session) -> None:
    response = http.post(
        f"{server.url}/v1/events/custom",
        json=event_body(date=1_700_000_000_000, attributes={"rows": 42}),
    )
    assert response.status_code == 201
    assert server.state.events[0]["attributes"] == {"rows": 42}


@pytest.mark.parametrize(
    "missing", ["identifyId", "eventName", "propertyKey", "userType"]
)
def test_event_missing_field_400(
    server: SandboxServer, http: requests.Session, missing: str
) -> None:
    body = event_body()
    del body[missing]
    response = http.post(f"{server.url}/v1/events/custom", json=body)
    assert response.status_code == 400
    assert error_fields(response) == [missing]


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("propertyKey", [DEFAULT_PRODUCT_KEY]),
        ("userType", "CUSTOMER"),
        ("date", "2024-01-01T00:00:00Z"),
        ("date", 1.5),
        ("attributes", ["csv"]),
        ("identifyId", 42),
    ],
)
def test_event_invalid_field_400(
    server: SandboxServer, http: requests.Session, field: str, value: Any
) -> None:
    response = http.post(
        f"{server.url}/v1/events/custom", json=event_body(**{field: value})
    )
    assert response.status_code == 400
    assert error_fields(response) == [field]
    assert server.state.events == []


def test_event_array_rejected_by_default(
    server: SandboxServer, http: requests.Session
) -> None:
    response = http.post(f"{server.url}/v1/events/custom", json=[event_body()])
    assert response.status_code == 400
    assert server.state.events == []


def test_event_batch_mode_reports_indexes(
    server: SandboxServer, http: requests.Session
) -> None:
    server.configure(batch_events=True)
    batch = [
        event_body(),
        event_body(userType="NOBODY"),
        event_body(),
        {"eventName": 1},
    ]
    response = http.post(f"{server.url}/v1/events/custom", json=batch)
    assert response.status_code == 400
    errors = response.json()
    assert [error["index"] for error in errors] == [1, 3]
    assert "userType" in errors[0]["message"]
    assert server.state.events == []


def test_event_batch_mode_plain_error(
    server: SandboxServer, http: requests.Session
) -> None:
    server.configure(batch_events=True, batch_error_index=False)
    response = http.post(
        f"{server.url}/v1/events/custom", json=[event_body(), {"eventName": 1}]
    )
    assert response.status_code == 400
    assert "externalapierror" in response.json()
    assert server.state.events == []


def test_event_batch_mode_all_valid_201(
    server: SandboxServer, http: requests.Session
) -> None:
    server.configure(batch_events=True)
    response = http.post(
        f"{server.url}/v1/events/custom", json=[event_body(), event_body()]
    )
    assert response.status_code == 201
    assert len(server.state.events) == 2


def test_event_list_filter(server: SandboxServer, http: requests.Session) -> None:
    http.post(f"{server.url}/v1/events/custom", json=event_body(eventName="Login"))
    http.post(f"{server.url}/v1/events/custom", json=event_body(eventName="Logout"))
    http.post(
        f"{server.url}/v1/events/custom",
        json=event_body(eventName="Login", identifyId="u-2"),
    )
    response = http.get(
        f"{server.url}/v1/events/custom",
        params={"filter": "eventName==Login;identifyId==u-1"},
    )
    body = response.json()
    assert body["totalHits"] == 1
    assert body["customEvents"][0]["eventName"] == "Login"
    assert body["customEvents"][0]["identifyId"] == "u-1"


# Request-level errors and type validation


def test_invalid_json_400(server: SandboxServer, http: requests.Session) -> None:
    response = http.post(
        f"{server.url}/v1/users",
        data=b'{"identifyId": ',
        headers={"Content-Type": "application/json"},
    )
    assert response.status_code == 400
    assert "Malformed JSON" in response.json()["externalapierror"]["message"]


def test_unknown_path_404(server: SandboxServer, http: requests.Session) -> None:
    response = http.get(f"{server.url}/v1/widgets")
    assert response.status_code == 404


def test_wrong_method_405(server: SandboxServer, http: requests.Session) -> None:
    response = http.delete(f"{server.url}/v1/events/custom")
    assert response.status_code == 405
    assert response.headers["Allow"] == "GET, POST"


@pytest.mark.parametrize(
    ("fields", "bad_field"),
    [
        ({"signUpDate": "2024-01-01"}, "signUpDate"),
        ({"signUpDate": True}, "signUpDate"),
        ({"propertyKeys": DEFAULT_PRODUCT_KEY}, "propertyKeys"),
        ({"propertyKeys": [DEFAULT_PRODUCT_KEY, 7]}, "propertyKeys"),
        ({"customAttributes": ["plan"]}, "customAttributes"),
        (
            {"customAttributes": {"trialEnds": "2024-01-01"}},
            "customAttributes.trialEnds",
        ),
        ({"customAttributes": {"seats": "3"}}, "customAttributes.seats"),
        ({"customAttributes": {"beta": "yes"}}, "customAttributes.beta"),
        ({"customAttributes": {"plan": 3}}, "customAttributes.plan"),
        ({"customAttributes": {"undefined": 1}}, "customAttributes.undefined"),
        ({"identifyId": 123}, "identifyId"),
        ({"type": "ADMIN"}, "type"),
        ({"location": {"city": 5}}, "location.city"),
    ],
)
def test_user_type_validation_400(
    server: SandboxServer,
    http: requests.Session,
    fields: dict[str, Any],
    bad_field: str,
) -> None:
    response = http.post(f"{server.url}/v1/users", json=user_body(**fields))
    assert response.status_code == 400
    assert error_fields(response) == [bad_field]
    assert server.state.users == {}


def test_account_numeric_id_400(server: SandboxServer, http: requests.Session) -> None:
    response = http.post(f"{server.url}/v1/accounts", json=account_body(account_id=42))
    assert response.status_code == 400
    assert error_fields(response) == ["id"]


def test_custom_attribute_types_accepted(
    server: SandboxServer, http: requests.Session
) -> None:
    attributes = {"plan": "gold", "trialEnds": 1_700_000_000_000, "seats": 2.5}
    attributes["beta"] = "false"
    response = http.post(
        f"{server.url}/v1/users", json=user_body(customAttributes=attributes)
    )
    assert response.status_code == 201
    assert server.state.users["u-1"]["customAttributes"]["beta"] is False


# Rate limit and faults


def test_rate_limit_429_then_recovers(
    server: SandboxServer, http: requests.Session
) -> None:
    server.configure(rate_limit=2)
    statuses = [http.get(f"{server.url}/v1/users").status_code for _ in range(3)]
    time.sleep(1.1)
    recovered = http.get(f"{server.url}/v1/users")
    assert statuses == [200, 200, 429]
    assert recovered.status_code == 200


def test_rate_limit_body_without_retry_after(
    server: SandboxServer, http: requests.Session
) -> None:
    server.configure(rate_limit=1)
    http.get(f"{server.url}/v1/users")
    response = http.get(f"{server.url}/v1/users")
    assert response.status_code == 429
    assert response.json()["externalapierror"]["message"] == "Rate limit exceeded"
    assert "Retry-After" not in response.headers


def test_rate_limit_retry_after_header(
    server: SandboxServer, http: requests.Session
) -> None:
    server.configure(rate_limit=1, retry_after=3)
    http.get(f"{server.url}/v1/users")
    response = http.get(f"{server.url}/v1/users")
    assert response.headers["Retry-After"] == "3"


def test_fault_rate_one_stores_nothing(
    server: SandboxServer, http: requests.Session
) -> None:
    server.configure(fault_rate=1.0, fault_statuses=[500, 503])
    response = http.post(f"{server.url}/v1/users", json=user_body())
    assert response.status_code in (500, 503)
    assert server.state.users == {}
    assert server.state.requests[-1]["fault"] == "fault_rate"


def test_fault_rate_set_over_http(
    server: SandboxServer, http: requests.Session
) -> None:
    config = requests.put(
        f"{server.url}/_sandbox/config", json={"fault_rate": 1, "fault_statuses": [502]}
    )
    response = http.post(f"{server.url}/v1/events/custom", json=event_body())
    assert config.status_code == 200
    assert response.status_code == 502
    assert response.headers["Content-Type"].startswith("text/html")
    assert server.state.events == []


def test_fail_next_statuses_in_order(
    server: SandboxServer, http: requests.Session
) -> None:
    server.configure(fail_next=[429, 429, 503])
    statuses = [
        http.post(f"{server.url}/v1/users", json=user_body()).status_code
        for _ in range(4)
    ]
    assert statuses == [429, 429, 503, 201]
    assert list(server.state.users) == ["u-1"]


def test_fail_next_skips_rejected_keys(
    server: SandboxServer, http: requests.Session
) -> None:
    server.configure(fail_next=[500])
    unauthorized = requests.get(f"{server.url}/v1/users")
    faulted = http.get(f"{server.url}/v1/users")
    assert unauthorized.status_code == 401
    assert faulted.status_code == 500


def test_drop_closes_connection(server: SandboxServer, http: requests.Session) -> None:
    server.configure(drop_rate=1.0)
    with pytest.raises(requests.ConnectionError):
        http.post(f"{server.url}/v1/users", json=user_body(), timeout=5)
    assert server.state.users == {}
    assert server.state.requests[-1]["fault"] == "drop"
    assert server.state.requests[-1]["status"] is None


def test_fail_next_drop_entry(server: SandboxServer, http: requests.Session) -> None:
    server.configure(fail_next=["drop"])
    with pytest.raises(requests.ConnectionError):
        http.get(f"{server.url}/v1/users", timeout=5)
    assert http.get(f"{server.url}/v1/users").status_code == 200


def test_slow_request_still_stored(
    server: SandboxServer, http: requests.Session
) -> None:
    server.configure(slow_rate=1.0, slow_ms=300)
    started = time.monotonic()
    response = http.post(f"{server.url}/v1/users", json=user_body())
    elapsed = time.monotonic() - started
    assert response.status_code == 201
    assert elapsed >= 0.3
    assert "u-1" in server.state.users


def test_latency_delays_every_response(
    server: SandboxServer, http: requests.Session
) -> None:
    server.configure(latency_ms=200)
    started = time.monotonic()
    response = requests.get(f"{server.url}/v1/users")
    elapsed = time.monotonic() - started
    assert response.status_code == 401
    assert elapsed >= 0.2


def test_keep_alive_uses_http_1_1(
    server: SandboxServer, http: requests.Session
) -> None:
    response = http.get(f"{server.url}/v1/users")
    assert response.raw.version == 11
    assert response.headers.get("Connection", "").lower() != "close"


# Inspection endpoints


def test_requests_log_hides_key(server: SandboxServer, http: requests.Session) -> None:
    http.post(f"{server.url}/v1/users", json=user_body())
    requests.get(f"{server.url}/v1/users", headers={KEY_HEADER: "wrong"})
    log = requests.get(f"{server.url}/_sandbox/requests").json()
    assert [entry["key_valid"] for entry in log] == [True, False]
    assert log[0]["body"] == user_body()
    assert log[0]["status"] == 201
    assert API_KEY not in str(log)
    assert "wrong" not in str(log)


def test_requests_log_since(server: SandboxServer, http: requests.Session) -> None:
    for _ in range(3):
        http.get(f"{server.url}/v1/users")
    log = requests.get(f"{server.url}/_sandbox/requests", params={"since": 2}).json()
    assert [entry["seq"] for entry in log] == [3]


def test_stats_counts_statuses(server: SandboxServer, http: requests.Session) -> None:
    server.configure(fail_next=[429])
    http.get(f"{server.url}/v1/users")
    http.get(f"{server.url}/v1/users")
    stats = requests.get(f"{server.url}/_sandbox/stats").json()
    assert stats["total_requests"] == 2
    assert stats["by_status"] == {"200": 1, "429": 1}
    assert stats["status_429"] == 1
    assert sum(item["count"] for item in stats["per_second"]) == 2


def test_state_endpoint_lists_records(
    server: SandboxServer, http: requests.Session
) -> None:
    http.post(f"{server.url}/v1/users", json=user_body())
    http.post(f"{server.url}/v1/events/custom", json=event_body())
    state = requests.get(f"{server.url}/_sandbox/state").json()
    assert [user["identifyId"] for user in state["users"]] == ["u-1"]
    assert state["accounts"] == []
    assert len(state["events"]) == 1


def test_reset_keeps_config(server: SandboxServer, http: requests.Session) -> None:
    server.configure(batch_events=True)
    http.post(f"{server.url}/v1/users", json=user_body())
    response = requests.post(f"{server.url}/_sandbox/reset")
    config = requests.get(f"{server.url}/_sandbox/config").json()
    assert response.status_code == 204
    assert server.state.users == {}
    assert len(server.state.requests) == 0
    assert config["batch_events"] is True


def test_config_hides_api_keys(server: SandboxServer) -> None:
    config = requests.get(f"{server.url}/_sandbox/config").json()
    assert config["api_key_count"] == 1
    assert API_KEY not in str(config)


def test_config_rejects_unknown_setting(server: SandboxServer) -> None:
    response = requests.put(f"{server.url}/_sandbox/config", json={"speed": 1})
    assert response.status_code == 400
    assert "speed" in response.json()["error"]


def test_config_rejects_bad_share(server: SandboxServer) -> None:
    response = requests.put(f"{server.url}/_sandbox/config", json={"drop_rate": 2})
    assert response.status_code == 400


def test_config_replaces_attributes(
    server: SandboxServer, http: requests.Session
) -> None:
    requests.put(
        f"{server.url}/_sandbox/config",
        json={"user_attributes": [{"apiName": "score2", "type": "NUMBER"}]},
    )
    definitions = http.get(f"{server.url}/v1/admin/model/user/attributes").json()
    assert [item["apiName"] for item in definitions] == ["score2"]
    assert definitions[0]["state"] == "ENABLED"


def test_inspection_page_escapes_html(
    server: SandboxServer, http: requests.Session
) -> None:
    http.post(f"{server.url}/v1/users", json=user_body("<script>alert(1)</script>"))
    page = requests.get(f"{server.url}/_sandbox/")
    assert page.status_code == 200
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in page.text
    assert "<script>" not in page.text


# Server construction and command line


def test_server_rejects_non_loopback_host() -> None:
    with pytest.raises(ValueError, match="not a loopback address"):
        SandboxServer(host="0.0.0.0")


def read_line(process: subprocess.Popen[str], timeout: float) -> str:
    assert process.stdout is not None
    selector = selectors.DefaultSelector()
    selector.register(process.stdout, selectors.EVENT_READ)
    ready = selector.select(timeout)
    selector.close()
    return process.stdout.readline() if ready else ""


def test_cli_starts_and_stops_on_sigterm(tmp_path: Path) -> None:
    port_file = tmp_path / "sandbox.port"
    process = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "sandbox",
            "--port",
            "0",
            "--api-key",
            "cli-key",
            "--port-file",
            str(port_file),
        ],
        cwd=REPO_ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        line = read_line(process, timeout=15)
        port = int(port_file.read_text())
        response = requests.get(
            f"http://127.0.0.1:{port}/v1/admin/subscription",
            headers={KEY_HEADER: "cli-key"},
            timeout=5,
        )
        process.send_signal(signal.SIGTERM)
        exit_code = process.wait(timeout=10)
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()

    assert line == f"PX sandbox listening on http://127.0.0.1:{port}\n"
    assert response.status_code == 200
    assert exit_code == 0
    assert not port_file.exists()


@pytest.mark.parametrize("host", ["0.0.0.0", "192.0.2.10", "example.com"])
def test_cli_rejects_non_loopback_host(host: str) -> None:
    result = subprocess.run(
        [sys.executable, "-m", "sandbox", "--host", host, "--port", "0"],
        cwd=REPO_ROOT,
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert result.returncode == 2
    assert "loopback" in result.stderr
    assert result.stdout == ""
