"""API keys never leave the encrypted column.

One test walks a team through everything that touches a key. It creates and
tests credentials through the views, sends test data, delivers with the
response webhook on and with a key PX rejects, queues a Celery task and
retries failures. It then searches every place a key could leak to:
every page of the team, every database column except the encrypted one, the
captured logs and everything in Redis. Neither key nor its first 8
characters may appear anywhere.
"""

from __future__ import annotations

import base64
import html
import itertools
import json
import logging
import re
from collections.abc import Iterator
from typing import Any

import pytest
import redis
from django.apps import apps
from django.conf import settings
from django.core.files.uploadedfile import SimpleUploadedFile
from django.test import Client
from django.urls import reverse

from credentials.models import Credential
from destinations.forms import CONSTANT_SOURCE, mapping_rows
from destinations.models import AuditEntry, Destination, Exchange, RecordResult, Run
from nexsets.models import Nexset, Record
from tests.conftest import USERS_CSV, deliver_in_process, purge_queue
from tests.services import SANDBOX, SANDBOX_KEY
from tests.test_isolation import ROUTES

pytestmark = pytest.mark.django_db

# Distinctive values: neither they nor their first 8 characters occur in any
# page, log line or record by chance.
API_KEY = "Zq9LxW4TpR7mN2vB8cK5sD1f"
WRONG_KEY = "Yh3GtE6uJ0aQ5wS8kP2nM7rC"
# Entered through the edit form to replace WRONG_KEY.
REPLACEMENT_KEY = "Xf6RbN1vKq4TzW9mH3sL8dJa"
FORBIDDEN = tuple(
    value for key in (API_KEY, WRONG_KEY, REPLACEMENT_KEY) for value in (key, key[:8])
)


@pytest.fixture(autouse=True)
def _fast_password_hasher(settings: Any) -> None:
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]


@pytest.fixture
def sandbox_accepts_api_key() -> Iterator[None]:
    SANDBOX.configure(api_keys=[SANDBOX_KEY, API_KEY])
    yield
    SANDBOX.configure(api_keys=[SANDBOX_KEY])


@pytest.fixture
def debug_logs(caplog: pytest.LogCaptureFixture) -> pytest.LogCaptureFixture:
    """Capture every logger at DEBUG, including those configured at a higher level."""
    caplog.set_level(logging.DEBUG)
    for name in list(logging.root.manager.loggerDict):
        caplog.set_level(logging.DEBUG, logger=name)
    return caplog


class Leaks:
    """The places searched so far and the forbidden values found in them."""

    def __init__(self) -> None:
        self.searched: list[str] = []
        self.found: list[str] = []

    def search(self, place: str, text: str | bytes) -> None:
        if isinstance(text, bytes):
            text = text.decode("utf-8", errors="replace")
        self.searched.append(place)
        for value in FORBIDDEN:
            if value in text:
                self.found.append(f"{value[:3]}… ({len(value)} characters) in {place}")

    def response(self, place: str, response: Any) -> None:
        if getattr(response, "streaming", False):
            body = b"".join(response.streaming_content)
        else:
            body = response.content
        self.search(place, body)
        self.search(f"{place} headers", json.dumps(dict(response.items())))
        self.search(f"{place} cookies", response.cookies.output())


# --- Steps through the views ------------------------------------------------------------


def create_credential(client: Client, leaks: Leaks, name: str, api_key: str) -> Credential:
    response = client.post(
        reverse("credentials:create"),
        {"name": name, "region": Credential.Region.SANDBOX, "api_key": api_key, "rate_limit": 200},
        follow=True,
    )
    assert response.status_code == 200
    leaks.response(f"credential {name} created", response)
    return Credential.objects.get(name=name)


def template_form(destination: Destination, **fields: str) -> dict[str, str]:
    config = destination.config
    data = {
        "action": "save",
        "name": destination.name,
        "mode": "template",
        "template": destination.template,
        "product_key": "AP-TEST-2",
        "timezone": "UTC",
        "skip_unchanged": "on",
        "response_webhook": "on",
    }
    for index, row in enumerate(mapping_rows(destination.template, config), start=1):
        data[f"target_{index}"] = row["target"]
        if row["is_constant"]:
            data[f"source_{index}"] = CONSTANT_SOURCE
            data[f"constant_{index}"] = row["constant"]
        elif row["attribute"]:
            data[f"source_{index}"] = row["attribute"]
    data.update(fields)
    return data


def create_destination(client: Client, leaks: Leaks, nexset: Nexset, credential: Credential, name: str) -> Destination:
    response = client.post(
        reverse("destinations:create"),
        {"nexset": nexset.pk, "name": name, "credential": credential.pk, "mode": "template", "template": "upsert_user"},
        follow=True,
    )
    assert response.status_code == 200
    leaks.response(f"destination {name} created", response)
    destination = Destination.objects.get(name=name)
    response = client.post(reverse("destinations:configure", args=[destination.pk]), template_form(destination), follow=True)
    assert response.status_code == 200
    leaks.response(f"destination {name} configured", response)
    destination.refresh_from_db()
    assert destination.config["response_webhook"] is True
    return destination


def post_fragment(client: Client, leaks: Leaks, name: str, destination: Destination, **extra: str) -> Any:
    data = template_form(destination, **extra)
    data.pop("action")
    response = client.post(reverse(name, args=[destination.pk]), data, HTTP_HX_REQUEST="true")
    assert response.status_code == 200, f"{name} answered {response.status_code}"
    leaks.response(f"{name} of {destination.name}", response)
    return response


def queued_messages() -> list[dict[str, Any]]:
    client = redis.Redis.from_url(settings.REDIS_URL)
    messages = []
    for key in client.scan_iter("celery*"):
        if client.type(key) == b"list":
            messages.extend(json.loads(raw) for raw in client.lrange(key, 0, -1))
    return messages


def redis_contents() -> Iterator[tuple[str, bytes]]:
    client = redis.Redis.from_url(settings.REDIS_URL)
    for key in client.scan_iter():
        kind = client.type(key).decode()
        if kind == "string":
            values = [client.get(key) or b""]
        elif kind == "list":
            values = client.lrange(key, 0, -1)
        elif kind == "hash":
            values = [field + b"=" + value for field, value in client.hgetall(key).items()]
        elif kind == "set":
            values = list(client.smembers(key))
        elif kind == "zset":
            values = client.zrange(key, 0, -1)
        else:
            values = []
        yield key.decode(errors="replace"), key + b" " + b" ".join(values)


# --- Where keys could leak --------------------------------------------------------------------


def page_urls(team: Any) -> Iterator[str]:
    """Every GET URL of the app for the team's objects, every records page included."""
    objects: dict[str, list[int]] = {
        "nexset": list(Nexset.objects.filter(team=team).values_list("pk", flat=True)),
        "credential": list(Credential.objects.filter(team=team).values_list("pk", flat=True)),
        "destination": list(Destination.objects.filter(team=team).values_list("pk", flat=True)),
    }
    for name, route in sorted(ROUTES.items()):
        if "GET" not in route.methods or route.public:
            continue
        if "run" in route.objects.values():
            for run in Run.objects.filter(destination__team=team):
                yield reverse(name, kwargs={"pk": run.destination_id, "run_pk": run.pk})
            continue
        kinds = list(route.objects.items()) + list(route.query.items())
        for ids in itertools.product(*(objects[kind] for _, kind in kinds)):
            values = {arg: pk for (arg, _), pk in zip(kinds, ids, strict=True)}
            url = reverse(name, kwargs={arg: values[arg] for arg in route.objects})
            if route.query:
                url += "?" + "&".join(f"{param}={values[param]}" for param in route.query)
            if name == "nexsets:records":
                count = Nexset.objects.get(pk=values["pk"]).records.count()
                for page in range(1, max(1, -(-count // 50)) + 1):
                    yield f"{url}?page={page}"
            else:
                yield url


def search_database(leaks: Leaks) -> None:
    for model in apps.get_models():
        fields = [
            field
            for field in model._meta.concrete_fields
            if not (model is Credential and field.name == "encrypted_key")
        ]
        for row in model._default_manager.all():
            text = json.dumps(
                {field.name: field.value_from_object(row) for field in fields},
                default=str,
                ensure_ascii=False,
            )
            leaks.search(f"{model._meta.label} {row.pk}", text)


def search_logs(leaks: Leaks, caplog: pytest.LogCaptureFixture) -> None:
    leaks.search("captured logs", caplog.text)
    for record in caplog.records:
        leaks.search(f"log record of {record.name}", f"{record.getMessage()} {record.args!r} {record.exc_text or ''}")


def search_redis(leaks: Leaks) -> None:
    for key, content in redis_contents():
        leaks.search(f"Redis key {key}", content)


def decoded_task(message: dict[str, Any]) -> tuple[str, Any]:
    body = message["body"]
    if message["properties"].get("body_encoding") == "base64":
        body = base64.b64decode(body)
    return message["headers"]["task"], json.loads(body)


# --- The test ---------------------------------------------------------------------------------------


def test_api_keys_never_leak(team, owner, sandbox_accepts_api_key, debug_logs, django_capture_on_commit_callbacks):
    purge_queue()
    leaks = Leaks()
    client = Client()
    client.force_login(owner)

    good = create_credential(client, leaks, "Production", API_KEY)
    assert good.status == Credential.Status.VALID, good.status_message
    bad = create_credential(client, leaks, "Mistyped", WRONG_KEY)
    assert bad.status == Credential.Status.INVALID

    # A rejected form must not echo the key back.
    response = client.post(
        reverse("credentials:create"),
        {"name": "Production", "region": Credential.Region.SANDBOX, "api_key": API_KEY, "rate_limit": 200},
    )
    assert response.context["form"].errors
    leaks.response("credential form with an error", response)

    response = client.post(
        reverse("nexsets:create"),
        {"name": "Users", "file": SimpleUploadedFile("users.csv", USERS_CSV.encode())},
        follow=True,
    )
    leaks.response("Nexset uploaded", response)
    nexset = Nexset.objects.get(name="Users")

    destination = create_destination(client, leaks, nexset, good, "Users to PX")
    failing = create_destination(client, leaks, nexset, bad, "Users with the wrong key")

    for target in (destination, failing):
        post_fragment(client, leaks, "destinations:preview", target)
        post_fragment(client, leaks, "destinations:dry_run", target)
        sample = json.dumps({"identifyId": "tinylion155", "propertyKeys": ["AP-TEST-2"]})
        post_fragment(client, leaks, "destinations:test", target, sample=sample)
        response = client.post(reverse("credentials:test", args=[target.credential.pk]), HTTP_HX_REQUEST="true")
        leaks.response(f"credential test of {target.credential.name}", response)
    assert Exchange.objects.filter(destination=destination, kind=Exchange.Kind.TEST, status__range=(200, 299)).exists()
    assert Exchange.objects.filter(destination=failing, kind=Exchange.Kind.TEST, status=401).exists()

    # Activation queues DELIVERY_TASKS_PER_RUN Celery tasks in Redis: each
    # message carries the run's primary key and nothing else.
    with django_capture_on_commit_callbacks(execute=True):
        response = client.post(reverse("destinations:activate", args=[destination.pk]), follow=True)
    leaks.response("activation", response)
    run = Run.objects.get(destination=destination)
    tasks = [decoded_task(message) for message in queued_messages()]
    assert len(tasks) == settings.DELIVERY_TASKS_PER_RUN
    for task_name, task_body in tasks:
        assert task_name == "destinations.tasks.deliver_run"
        assert task_body[0] == [run.pk]
        assert task_body[1] == {}
        leaks.search("Celery task body", json.dumps(task_body))
    search_redis(leaks)
    purge_queue()

    # One record fails at PX, so the failure pages and export have content.
    SANDBOX.configure(fail_next=[400])
    run = deliver_in_process(run)
    assert run.status == Run.Status.PARTIAL, run.last_error

    with django_capture_on_commit_callbacks(execute=False):
        client.post(reverse("destinations:activate", args=[failing.pk]), follow=True)
    deliver_in_process(Run.objects.get(destination=failing))
    failing.refresh_from_db()
    assert failing.status == Destination.Status.PAUSED
    assert "authentication failed" in failing.status_reason

    with django_capture_on_commit_callbacks(execute=False):
        response = client.post(reverse("destinations:retry_failed", args=[destination.pk]), follow=True)
    leaks.response("retry of failed records", response)
    client.post(reverse("destinations:pause", args=[destination.pk]), follow=True)

    # Replacing a key, and saving the form again without one, keeps it hidden.
    for api_key in (REPLACEMENT_KEY, ""):
        response = client.post(
            reverse("credentials:edit", args=[bad.pk]),
            {"name": bad.name, "region": Credential.Region.SANDBOX, "api_key": api_key, "rate_limit": 100},
            follow=True,
        )
        assert response.status_code == 200
        leaks.response("credential edited", response)
    bad.refresh_from_db()
    assert bad.rate_limit == 100
    assert bad.get_api_key() == REPLACEMENT_KEY

    # The places searched below must hold what the steps above wrote.
    destination.refresh_from_db()
    assert destination.response_nexset is not None
    assert Record.objects.filter(nexset=destination.response_nexset).count() >= 2
    assert RecordResult.objects.filter(status=RecordResult.Status.FAILED).exclude(request=None).exists()
    assert RecordResult.objects.filter(status=RecordResult.Status.SUCCEEDED).exists()
    assert AuditEntry.objects.filter(destination=destination).count() >= 4
    assert any("PX sandbox" not in record.getMessage() for record in debug_logs.records)

    pages = 0
    for url in page_urls(team):
        for headers in ({}, {"HTTP_HX_REQUEST": "true"}):
            response = client.get(url, **headers)
            assert response.status_code == 200, f"GET {url} answered {response.status_code}"
            leaks.response(f"GET {url}", response)
            pages += 1
    assert pages > 40

    search_database(leaks)
    search_logs(leaks, debug_logs)
    search_redis(leaks)

    assert leaks.found == []


def test_credential_page_shows_only_last_four(owner_client, team, sandbox_accepts_api_key):
    credential = Credential(team=team, name="Production", region=Credential.Region.SANDBOX)
    credential.set_api_key(API_KEY)
    credential.save()
    page = owner_client.get(reverse("credentials:detail", args=[credential.pk])).content.decode()
    assert "••••" + API_KEY[-4:] in html.unescape(page)
    assert API_KEY[-5:] not in page
    assert credential.key_last_four == API_KEY[-4:]


def test_credential_form_never_renders_key(owner_client):
    response = owner_client.post(
        reverse("credentials:create"),
        {"name": "", "region": Credential.Region.SANDBOX, "api_key": API_KEY, "rate_limit": 200},
    )
    assert response.status_code == 200
    page = response.content.decode()
    assert re.search(r'<input type="password" name="api_key"[^>]*>', page)
    assert API_KEY not in page
