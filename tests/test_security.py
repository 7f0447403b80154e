"""CSRF, production settings, Content-Security-Policy, login throttling, the
audit log and the limits on where requests to PX may go."""

from __future__ import annotations

import json
import logging
import os
import re
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from unittest import mock

import pytest
import redis
from cryptography.fernet import Fernet
from django.conf import settings as django_settings
from django.test import Client, RequestFactory
from django.urls import reverse

from credentials.models import Credential
from destinations.manual import PX_API_HOSTS
from destinations.models import AuditEntry, Destination
from destinations.plan import allowed_hosts
from px.client import MAX_RESPONSE_BYTES, PxClient
from teams.models import Membership
from teams.throttle import client_address
from tests.conftest import (
    USERS_CSV,
    deliver_in_process,
    make_user,
    manual_destination,
    template_destination,
)
from tests.test_isolation import all_patterns

pytestmark = pytest.mark.django_db

BASE_DIR = Path(__file__).resolve().parent.parent
PASSWORD = "correct-horse-battery"


@pytest.fixture(autouse=True)
def _fast_password_hasher(settings: Any) -> None:
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]


# --- CSRF -----------------------------------------------------------------------------------


def csrf_token_of(page: str) -> str:
    match = re.search(r"""hx-headers='\{"X-CSRFToken": "([^"]+)"\}'""", page)
    assert match, "the page sets no X-CSRFToken in hx-headers"
    return match.group(1)


def test_post_without_csrf_token_is_rejected(owner, credential, make_nexset):
    destination = template_destination(
        make_nexset(USERS_CSV), credential, name="PX", status=Destination.Status.ACTIVE
    )
    client = Client(enforce_csrf_checks=True)
    client.force_login(owner)
    response = client.post(reverse("destinations:pause", args=[destination.pk]))
    assert response.status_code == 403
    destination.refresh_from_db()
    assert destination.status == Destination.Status.ACTIVE


def test_htmx_post_with_header_token_is_accepted(owner, credential, make_nexset):
    destination = template_destination(
        make_nexset(USERS_CSV), credential, name="PX", status=Destination.Status.ACTIVE
    )
    client = Client(enforce_csrf_checks=True)
    client.force_login(owner)
    page = client.get(reverse("destinations:detail", args=[destination.pk])).content.decode()
    response = client.post(
        reverse("destinations:pause", args=[destination.pk]),
        HTTP_X_CSRFTOKEN=csrf_token_of(page),
        HTTP_HX_REQUEST="true",
    )
    assert response.status_code == 302
    destination.refresh_from_db()
    assert destination.status == Destination.Status.PAUSED


def test_login_without_csrf_token_is_rejected(owner):
    client = Client(enforce_csrf_checks=True)
    response = client.post(reverse("login"), {"username": "alice", "password": PASSWORD})
    assert response.status_code == 403
    assert "_auth_user_id" not in client.session


def test_only_webhook_is_csrf_exempt():
    exempt = sorted(
        pattern.qualified_name or pattern.route
        for pattern in all_patterns()
        if getattr(pattern.callback, "csrf_exempt", False)
    )
    assert exempt == ["nexset_webhook"]


def test_every_post_form_has_csrf_token():
    missing = []
    for path in sorted((BASE_DIR / "templates").rglob("*.html")):
        text = path.read_text()
        for match in re.finditer(r"<form\b[^>]*>", text, re.IGNORECASE):
            if not re.search(r"method=[\"']?post", match.group(), re.IGNORECASE):
                continue
            end = text.find("</form>", match.end())
            if "{% csrf_token %}" not in text[match.end() : end]:
                line = text.count("\n", 0, match.start()) + 1
                missing.append(f"{path.relative_to(BASE_DIR)}:{line}")
    assert missing == [], "POST forms without {% csrf_token %}"


# --- Production settings --------------------------------------------------------------------


def production_env(**overrides: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k not in ("SECRET_KEY", "CREDENTIAL_KEYS", "DEBUG")}
    env.update(
        DEBUG="false",
        SECRET_KEY="production-test-" + "s3cr3t-" * 8,
        CREDENTIAL_KEYS=Fernet.generate_key().decode(),
        ALLOWED_HOSTS="pxsync.example.com",
        DJANGO_SETTINGS_MODULE="config.settings",
    )
    env.update(overrides)
    return {k: v for k, v in env.items() if v is not None}


SETTINGS_DUMP = """
import json
import django
from django.conf import settings
django.setup()
names = [
    "DEBUG", "SESSION_COOKIE_SECURE", "SESSION_COOKIE_HTTPONLY", "CSRF_COOKIE_SECURE",
    "SECURE_SSL_REDIRECT", "SECURE_HSTS_SECONDS", "SECURE_HSTS_INCLUDE_SUBDOMAINS",
    "SECURE_CONTENT_TYPE_NOSNIFF", "X_FRAME_OPTIONS", "SESSION_COOKIE_SAMESITE",
    "CSRF_COOKIE_SAMESITE",
]
print(json.dumps({name: getattr(settings, name) for name in names}))
"""


def run_python(code: str, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-c", code], cwd=BASE_DIR, env=env, capture_output=True, text=True, timeout=60
    )


def test_production_settings_are_secure():
    result = run_python(SETTINGS_DUMP, production_env())
    assert result.returncode == 0, result.stderr
    values = json.loads(result.stdout)
    assert values["DEBUG"] is False
    assert values["SESSION_COOKIE_SECURE"] is True
    assert values["SESSION_COOKIE_HTTPONLY"] is True
    assert values["CSRF_COOKIE_SECURE"] is True
    assert values["SECURE_SSL_REDIRECT"] is True
    assert values["SECURE_HSTS_SECONDS"] >= 31536000
    assert values["SECURE_HSTS_INCLUDE_SUBDOMAINS"] is True
    assert values["SECURE_CONTENT_TYPE_NOSNIFF"] is True
    assert values["X_FRAME_OPTIONS"] == "DENY"
    assert values["SESSION_COOKIE_SAMESITE"] == "Lax"
    assert values["CSRF_COOKIE_SAMESITE"] == "Lax"


def test_production_deploy_check_passes():
    result = subprocess.run(
        [sys.executable, "manage.py", "check", "--deploy", "--fail-level", "WARNING"],
        cwd=BASE_DIR, env=production_env(), capture_output=True, text=True, timeout=60,
    )
    assert result.returncode == 0, result.stdout + result.stderr


@pytest.mark.parametrize("missing", ["SECRET_KEY", "CREDENTIAL_KEYS"])
def test_production_requires_secret(missing):
    env = production_env()
    del env[missing]
    result = run_python(SETTINGS_DUMP, env)
    assert result.returncode != 0
    assert f"{missing} is required when DEBUG is false" in result.stderr


# --- Content-Security-Policy ----------------------------------------------------------------


def csp_directives(header: str) -> dict[str, list[str]]:
    directives = {}
    for part in header.split(";"):
        words = part.split()
        if words:
            directives[words[0]] = words[1:]
    return directives


@pytest.mark.parametrize("path", ["home", "login", "missing"])
def test_responses_have_content_security_policy(path, owner, owner_client):
    if path == "login":
        response = Client().get(reverse("login"))
    elif path == "missing":
        response = owner_client.get("/no-such-page/")
        assert response.status_code == 404
    else:
        response = owner_client.get(reverse("home"))
    directives = csp_directives(response["Content-Security-Policy"])
    assert directives["default-src"] == ["'self'"]
    assert directives["script-src"] == ["'self'"]
    assert directives["object-src"] == ["'none'"]
    assert directives["frame-ancestors"] == ["'none'"]
    assert directives["form-action"] == ["'self'"]
    assert directives["base-uri"] == ["'self'"]
    assert response["X-Frame-Options"] == "DENY"
    assert response["X-Content-Type-Options"] == "nosniff"


def test_templates_need_no_inline_script():
    """The policy blocks inline scripts, so the templates must not rely on them."""
    found = []
    for path in sorted((BASE_DIR / "templates").rglob("*.html")):
        text = path.read_text()
        name = str(path.relative_to(BASE_DIR))
        for match in re.finditer(r"<script\b[^>]*>", text, re.IGNORECASE):
            if "src=" not in match.group():
                found.append(f"{name}: inline <script>")
        if re.search(r"\son[a-z]+\s*=", text, re.IGNORECASE):
            found.append(f"{name}: event handler attribute")
        if re.search(r"\shx-on[:-]|javascript:|=['\"]js:", text):
            found.append(f"{name}: script in an attribute")
    assert found == []


# --- Login throttling -------------------------------------------------------------------------


@pytest.fixture
def throttle_settings(settings: Any) -> Any:
    settings.LOGIN_FAILURE_WINDOW_SECONDS = 900
    settings.LOGIN_MAX_FAILURES_PER_USERNAME = 5
    settings.LOGIN_MAX_FAILURES_PER_ADDRESS = 20
    settings.TRUSTED_PROXY_COUNT = 0
    return settings


def login(client: Client, username: str, password: str, address: str = "10.0.0.1", path: str = "") -> Any:
    return client.post(
        path or reverse("login"), {"username": username, "password": password}, REMOTE_ADDR=address
    )


def fail_logins(count: int, username: str = "alice", address: str = "10.0.0.1", path: str = "") -> None:
    for _ in range(count):
        response = login(Client(), username, "wrong-password", address, path)
        assert response.status_code == 200
        assert "Please enter a correct username and password" in response.content.decode()


def test_login_throttled_per_username(owner, throttle_settings):
    fail_logins(5)
    client = Client()
    with mock.patch("django.contrib.auth.forms.authenticate", side_effect=AssertionError("password checked")):
        response = login(client, "alice", PASSWORD, address="10.0.0.2")
    assert response.status_code == 429
    page = response.content.decode()
    assert "Too many failed login attempts" in page
    assert "Wait 15 minutes and try again." in page
    assert "_auth_user_id" not in client.session


def test_login_throttle_ignores_username_case(owner, throttle_settings):
    fail_logins(5, username="ALICE")
    assert login(Client(), "alice", PASSWORD).status_code == 429


def test_login_below_limit_succeeds(owner, throttle_settings):
    fail_logins(4)
    response = login(Client(), "alice", PASSWORD)
    assert response.status_code == 302


def test_login_throttled_per_address(team, throttle_settings):
    throttle_settings.LOGIN_MAX_FAILURES_PER_ADDRESS = 3
    make_user(team, "bob")
    for username in ("carol", "dave", "erin"):
        fail_logins(1, username=username, address="10.0.0.7")
    assert login(Client(), "bob", PASSWORD, address="10.0.0.7").status_code == 429
    assert login(Client(), "bob", PASSWORD, address="10.0.0.8").status_code == 302


def test_successful_login_resets_username_count(owner, throttle_settings):
    fail_logins(4)
    assert login(Client(), "alice", PASSWORD).status_code == 302
    fail_logins(4)
    assert login(Client(), "alice", PASSWORD).status_code == 302


def test_empty_password_does_not_reset_count(owner, throttle_settings):
    fail_logins(4)
    response = login(Client(), "alice", "")
    assert response.status_code == 200
    fail_logins(1)
    assert login(Client(), "alice", PASSWORD).status_code == 429


def test_login_throttle_window_expires(owner, throttle_settings):
    throttle_settings.LOGIN_FAILURE_WINDOW_SECONDS = 1
    throttle_settings.LOGIN_MAX_FAILURES_PER_USERNAME = 2
    fail_logins(2)
    response = login(Client(), "alice", PASSWORD)
    assert response.status_code == 429
    assert "Wait 1 minute and try again." in response.content.decode()
    time.sleep(1.2)
    assert login(Client(), "alice", PASSWORD).status_code == 302


def test_admin_login_is_throttled(owner, throttle_settings):
    owner.is_staff = True
    owner.save()
    admin_login = reverse("admin:login")
    for _ in range(5):
        login(Client(), "alice", "wrong-password", path=admin_login)
    client = Client()
    response = login(client, "alice", PASSWORD, path=admin_login)
    assert "Too many failed login attempts" in response.content.decode()
    assert "_auth_user_id" not in client.session


def test_login_throttle_start_logged_once(owner, throttle_settings, caplog):
    caplog.set_level(logging.WARNING, logger="teams.throttle")
    fail_logins(5)
    for _ in range(3):
        login(Client(), "alice", "wrong-password")
    warnings = [record for record in caplog.records if record.name == "teams.throttle"]
    assert len(warnings) == 1
    assert "username 'alice'" in warnings[0].getMessage()
    assert "wrong-password" not in caplog.text


def test_login_counters_live_in_redis(owner, throttle_settings):
    assert django_settings.CACHES["default"]["BACKEND"] == "django.core.cache.backends.redis.RedisCache"
    fail_logins(1)
    client = redis.Redis.from_url(django_settings.REDIS_URL)
    keys = [key.decode() for key in client.scan_iter("pxsync:cache:*login-failures*")]
    assert len(keys) == 4  # count and expiry, for the username and the address
    assert not any("alice" in key for key in keys)


@pytest.mark.parametrize(
    ("proxies", "forwarded", "expected"),
    [
        (0, "203.0.113.9", "10.0.0.1"),
        (1, "203.0.113.9", "203.0.113.9"),
        (1, "198.51.100.1, 203.0.113.9", "203.0.113.9"),
        (2, "198.51.100.1, 203.0.113.9", "198.51.100.1"),
        (2, "203.0.113.9", "10.0.0.1"),
    ],
)
def test_client_address_trusts_only_configured_proxies(settings, proxies, forwarded, expected):
    settings.TRUSTED_PROXY_COUNT = proxies
    request = RequestFactory().get("/", REMOTE_ADDR="10.0.0.1", HTTP_X_FORWARDED_FOR=forwarded)
    assert client_address(request) == expected


# --- Audit log ----------------------------------------------------------------------------------


def manual_form(destination: Destination, **fields: str) -> dict[str, str]:
    data = {
        "action": "save",
        "name": destination.name,
        "mode": "manual",
        "method": "POST",
        "content_format": "json",
        "url": "/v1/events/custom",
        "headers": "",
        "skip_unchanged": "on",
    }
    data.update(fields)
    return data


def test_configure_save_is_audited_with_masked_headers(owner_client, credential, make_nexset):
    destination = manual_destination(make_nexset(USERS_CSV), credential, name="Manual")
    headers = "X-Api-Token:tok-AUDITSECRET-9876,X-Source:warehouse"
    response = owner_client.post(
        reverse("destinations:configure", args=[destination.pk]), manual_form(destination, headers=headers)
    )
    assert response.status_code == 302
    entry = AuditEntry.objects.get(destination=destination, action="configured")
    assert entry.actor == "alice"
    assert entry.created is not None
    assert entry.before["config"]["headers"] == ""
    assert entry.after["config"]["headers"] == "X-Api-Token:••••9876,X-Source:••••ouse"
    assert "AUDITSECRET" not in json.dumps(entry.after)

    owner_client.post(
        reverse("destinations:configure", args=[destination.pk]),
        manual_form(destination, headers="X-Source:lake"),
    )
    second = AuditEntry.objects.filter(destination=destination, action="configured").order_by("-pk").first()
    assert second.before["config"]["headers"] == "X-Api-Token:••••9876,X-Source:••••ouse"
    assert second.after["config"]["headers"] == "X-Source:••••"
    assert "AUDITSECRET" not in json.dumps(second.before)


def test_activate_and_pause_are_audited(team, owner_client, credential, make_nexset, django_capture_on_commit_callbacks):
    destination = template_destination(make_nexset(USERS_CSV), credential, name="PX")
    with django_capture_on_commit_callbacks(execute=False):
        owner_client.post(reverse("destinations:activate", args=[destination.pk]))
    activated = AuditEntry.objects.get(destination=destination, action="activated")
    assert activated.actor == "alice"
    assert activated.before["status"] == Destination.Status.DRAFT
    assert activated.after["status"] == Destination.Status.ACTIVE

    viewer = make_user(team, "victor", Membership.Role.VIEWER)
    client = Client()
    client.force_login(viewer)
    client.post(reverse("destinations:pause", args=[destination.pk]))
    paused = AuditEntry.objects.get(destination=destination, action="paused")
    assert paused.actor == "victor"
    assert paused.before["status"] == Destination.Status.ACTIVE
    assert paused.after["status"] == Destination.Status.PAUSED
    assert paused.after["credential"] == credential.name


def test_destination_page_lists_audit_entries(owner_client, credential, make_nexset, django_capture_on_commit_callbacks):
    destination = manual_destination(make_nexset(USERS_CSV), credential, name="Manual")
    owner_client.post(
        reverse("destinations:configure", args=[destination.pk]),
        manual_form(destination, headers="X-Api-Token:tok-AUDITSECRET-9876"),
    )
    with django_capture_on_commit_callbacks(execute=False):
        owner_client.post(reverse("destinations:activate", args=[destination.pk]))
    owner_client.post(reverse("destinations:pause", args=[destination.pk]))
    page = owner_client.get(reverse("destinations:detail", args=[destination.pk])).content.decode()
    audit = page[page.index('id="audit"') :]
    rows = re.findall(r"<tr><td>[^<]*</td><td>([^<]*)</td><td>([^<]*)</td>", audit)
    assert rows == [("alice", "paused"), ("alice", "activated"), ("alice", "configured")]
    assert "••••9876" in audit
    assert "AUDITSECRET" not in page


# --- Where requests may go ----------------------------------------------------------------------


class LocalServer:
    """An HTTP server on 127.0.0.1 that records requests and responds with `respond`."""

    def __init__(self, respond: Callable[[BaseHTTPRequestHandler], None]) -> None:
        self.requests: list[tuple[str, str]] = []
        server = self

        class Handler(BaseHTTPRequestHandler):
            def _handle(self) -> None:
                server.requests.append((self.command, self.path))
                length = int(self.headers.get("Content-Length") or 0)
                if length:
                    self.rfile.read(length)
                respond(self)

            do_GET = do_POST = do_PUT = _handle

            def log_message(self, format: str, *args: Any) -> None:
                pass

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.httpd.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.httpd.server_port}"
        self.netloc = f"127.0.0.1:{self.httpd.server_port}"
        threading.Thread(target=self.httpd.serve_forever, daemon=True).start()

    def close(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()


@pytest.fixture
def local_servers() -> Iterator[Callable[..., LocalServer]]:
    started: list[LocalServer] = []

    def start(respond: Callable[[BaseHTTPRequestHandler], None]) -> LocalServer:
        server = LocalServer(respond)
        started.append(server)
        return server

    yield start
    for server in started:
        server.close()


def answer_ok(handler: BaseHTTPRequestHandler) -> None:
    handler.send_response(200)
    handler.send_header("Content-Type", "application/json")
    handler.send_header("Content-Length", "2")
    handler.end_headers()
    handler.wfile.write(b"{}")


def redirect_to(location: str) -> Callable[[BaseHTTPRequestHandler], None]:
    def respond(handler: BaseHTTPRequestHandler) -> None:
        handler.send_response(302)
        handler.send_header("Location", location + handler.path)
        handler.send_header("Content-Length", "0")
        handler.end_headers()

    return respond


@pytest.mark.parametrize("host", PX_API_HOSTS)
def test_allowed_hosts_only_credential_region(host):
    assert allowed_hosts(f"https://{host}") == ([host], [])


def test_allowed_hosts_sandbox_credential(settings):
    settings.PX_SANDBOX_URL = "http://127.0.0.1:8765"
    assert allowed_hosts("http://127.0.0.1:8765") == ([], ["127.0.0.1:8765"])


def test_allowed_hosts_sandbox_disabled(settings):
    settings.PX_SANDBOX_URL = ""
    assert allowed_hosts("http://127.0.0.1:8765") == ([], [])


@pytest.mark.parametrize(
    "url",
    [
        "https://evil.example/v1/users",
        "https://169.254.169.254/latest/meta-data/",
        "https://api.aptrinsic.com.evil.example/v1/users",
        "https://api.aptrinsic.com@evil.example/v1/users",
        "http://api.aptrinsic.com/v1/users",
        "https://localhost/v1/users",
        "http://127.0.0.1:1/v1/users",
        "file:///etc/passwd",
        "//evil.example/v1/users",
    ],
)
def test_configure_rejects_url_outside_px_hosts(url, owner_client, credential, make_nexset):
    destination = manual_destination(make_nexset(USERS_CSV), credential, name="Manual")
    response = owner_client.post(
        reverse("destinations:configure", args=[destination.pk]), manual_form(destination, url=url)
    )
    assert response.status_code == 200
    assert "Nothing was saved" in response.content.decode()
    destination.refresh_from_db()
    assert destination.config["url"] == "/v1/events/custom"
    assert not AuditEntry.objects.filter(destination=destination).exists()


def test_configure_accepts_px_host(owner_client, team, make_nexset):
    credential = Credential(team=team, name="EU", region=Credential.Region.EU)
    credential.set_api_key("eu-key-for-tests")
    credential.save()
    destination = manual_destination(make_nexset(USERS_CSV), credential, name="Manual")
    response = owner_client.post(
        reverse("destinations:configure", args=[destination.pk]),
        manual_form(destination, url="https://api-eu.aptrinsic.com/v1/events/custom"),
    )
    assert response.status_code == 302
    destination.refresh_from_db()
    assert destination.config["url"] == "https://api-eu.aptrinsic.com/v1/events/custom"


def test_sandbox_credential_cannot_target_px(owner_client, credential, make_nexset):
    destination = manual_destination(make_nexset(USERS_CSV), credential, name="Manual")
    response = owner_client.post(
        reverse("destinations:configure", args=[destination.pk]),
        manual_form(destination, url="https://api.aptrinsic.com/v1/events/custom"),
    )
    assert response.status_code == 200
    assert "a credential sends only to its own region" in response.content.decode()


def test_worker_rejects_stored_url_outside_px_hosts(credential, make_nexset, local_servers, django_capture_on_commit_callbacks):
    sink = local_servers(answer_ok)
    destination = manual_destination(make_nexset(USERS_CSV), credential, name="Manual")
    # Written past the form, as an older version or a direct database edit might.
    destination.config["url"] = sink.url + "/collect"
    destination.status = Destination.Status.ACTIVE
    destination.save()
    deliver_in_process(destination, django_capture_on_commit_callbacks, timeout=30)
    destination.refresh_from_db()
    assert destination.status == Destination.Status.PAUSED
    assert "invalid configuration" in destination.status_reason
    assert sink.requests == []


def test_client_does_not_follow_redirect(local_servers):
    sink = local_servers(answer_ok)
    redirector = local_servers(redirect_to(sink.url))
    client = PxClient(redirector.url, "px-key-for-redirect-test")
    try:
        response = client.request("GET", "/v1/admin/subscription")
    finally:
        client.close()
    assert response.status == 302
    assert redirector.requests == [("GET", "/v1/admin/subscription")]
    assert sink.requests == []


def test_send_test_does_not_follow_redirect(settings, owner_client, credential, make_nexset, local_servers):
    sink = local_servers(answer_ok)
    redirector = local_servers(redirect_to(sink.url))
    settings.PX_SANDBOX_URL = redirector.url
    destination = template_destination(make_nexset(USERS_CSV), credential, name="PX")
    sample = json.dumps({"identifyId": "tinylion155", "propertyKeys": ["AP-TEST-2"]})
    response = owner_client.post(
        reverse("destinations:test", args=[destination.pk]),
        {"product_key": "AP-TEST-2", "sample": sample, "target_1": "identifyId", "source_1": "User ID"},
        HTTP_HX_REQUEST="true",
    )
    assert response.status_code == 200
    assert "HTTP 302" in response.content.decode()
    assert len(redirector.requests) >= 1
    assert sink.requests == []


def big_body(size: int) -> Callable[[BaseHTTPRequestHandler], None]:
    def respond(handler: BaseHTTPRequestHandler) -> None:
        handler.send_response(200)
        handler.send_header("Content-Type", "application/json")
        handler.send_header("Content-Length", str(size))
        handler.end_headers()
        chunk = b"x" * 65536
        sent = 0
        try:
            while sent < size:
                part = chunk[: size - sent]
                handler.wfile.write(part)
                sent += len(part)
        except (BrokenPipeError, ConnectionResetError):
            pass

    return respond


def endless_body(handler: BaseHTTPRequestHandler) -> None:
    handler.send_response(200)
    handler.send_header("Content-Type", "application/json")
    handler.end_headers()
    chunk = b"x" * 65536
    try:
        # Stops when the client closes the connection, or after 1 GiB.
        for _ in range(16384):
            handler.wfile.write(chunk)
    except (BrokenPipeError, ConnectionResetError):
        pass
    handler.close_connection = True


def test_response_body_is_capped(local_servers):
    server = local_servers(big_body(3 * MAX_RESPONSE_BYTES))
    client = PxClient(server.url, "px-key-for-size-test")
    try:
        response = client.request("GET", "/v1/users")
    finally:
        client.close()
    assert response.truncated is True
    assert len(response.text.encode()) == MAX_RESPONSE_BYTES


def test_endless_response_is_cut_off(local_servers):
    server = local_servers(endless_body)
    client = PxClient(server.url, "px-key-for-size-test", timeout=10)
    started = time.monotonic()
    try:
        response = client.request("GET", "/v1/users")
    finally:
        client.close()
    assert time.monotonic() - started < 10
    assert response.truncated is True
    assert len(response.text.encode()) == MAX_RESPONSE_BYTES
