"""Credentials through the views: regions, encryption at rest, masking and testing.

The tests post only the Sandbox region, because saving a credential tests it
at once and any other region would call a real PX host.
"""

from __future__ import annotations

import html
from typing import Any

import pytest
from django.db import connection
from django.urls import reverse

from credentials.forms import CredentialForm
from credentials.models import Credential
from teams.models import Membership, Team
from tests.conftest import make_user, sandbox_requests
from tests.services import SANDBOX, SANDBOX_KEY

pytestmark = pytest.mark.django_db

WRONG_KEY = "wrong-key-0000-1234"


def create(client: Any, name: str = "PX sandbox", api_key: str = SANDBOX_KEY, **fields: Any) -> Any:
    data = {"name": name, "region": "SANDBOX", "api_key": api_key, "rate_limit": "200", **fields}
    return client.post(reverse("credentials:create"), data)


def text(response: Any) -> str:
    return html.unescape(response.content.decode())


def region_values() -> list[str]:
    return [value for value, _ in CredentialForm(team=None).fields["region"].choices]


def test_regions_with_sandbox_url(settings: Any, owner_client: Any) -> None:
    settings.PX_SANDBOX_URL = SANDBOX.url

    page = text(owner_client.get(reverse("credentials:create")))

    assert region_values() == ["US", "EU", "US2", "SANDBOX"]
    assert f'<option value="SANDBOX">Sandbox ({SANDBOX.url})</option>' in page


def test_regions_without_sandbox_url(settings: Any, owner_client: Any) -> None:
    settings.PX_SANDBOX_URL = ""

    page = text(owner_client.get(reverse("credentials:create")))

    assert region_values() == ["US", "EU", "US2"]
    assert 'value="SANDBOX"' not in page


def test_sandbox_region_rejected_when_disabled(settings: Any, owner_client: Any) -> None:
    settings.PX_SANDBOX_URL = ""

    response = create(owner_client)

    assert response.status_code == 200
    assert "region" in response.context["form"].errors
    assert Credential.objects.count() == 0
    assert sandbox_requests() == []


def test_create_tests_and_redirects(owner_client: Any) -> None:
    response = create(owner_client)

    credential = Credential.objects.get()
    assert response.status_code == 302
    assert response["Location"] == reverse("credentials:detail", args=[credential.pk])
    assert credential.region == Credential.Region.SANDBOX
    assert credential.rate_limit == 200
    assert credential.status == Credential.Status.VALID
    assert credential.status_message == "Valid: subscription 'PX Sandbox'."
    assert [(entry["method"], entry["path"], entry["status"]) for entry in sandbox_requests()] == [
        ("GET", "/v1/admin/subscription", 200)
    ]


def test_key_encrypted_at_rest(owner_client: Any) -> None:
    create(owner_client)
    credential = Credential.objects.get()

    with connection.cursor() as cursor:
        cursor.execute(f"SELECT * FROM {Credential._meta.db_table} WHERE id = %s", [credential.pk])
        row = cursor.fetchone()

    assert row is not None
    assert not any(SANDBOX_KEY in str(value) for value in row)
    assert credential.encrypted_key != SANDBOX_KEY
    assert credential.key_last_four == "-key"
    assert credential.get_api_key() == SANDBOX_KEY


def test_pages_show_masked_key(owner_client: Any) -> None:
    create(owner_client)
    credential = Credential.objects.get()

    pages = {
        "detail": owner_client.get(reverse("credentials:detail", args=[credential.pk])),
        "list": owner_client.get(reverse("credentials:list")),
        "home": owner_client.get(reverse("home")),
    }

    for name, response in pages.items():
        assert response.status_code == 200, name
        assert "••••-key" in text(response), name
        assert SANDBOX_KEY not in text(response), name
        assert credential.encrypted_key not in text(response), name


def test_rejected_form_drops_key(owner_client: Any) -> None:
    create(owner_client)

    # A second credential with the same name is rejected, and the key field comes back empty.
    response = create(owner_client, api_key="another-secret-key-5678")

    assert response.status_code == 200
    assert "exists already" in text(response)
    assert "another-secret-key-5678" not in text(response)
    assert Credential.objects.count() == 1


def test_short_key_rejected(owner_client: Any) -> None:
    response = create(owner_client, api_key="abc")

    assert response.status_code == 200
    assert "This does not look like a PX API key" in text(response)
    assert Credential.objects.count() == 0


def test_viewer_cannot_create(team: Team, client: Any) -> None:
    client.force_login(make_user(team, "victor", role=Membership.Role.VIEWER))

    response = create(client)

    assert response.status_code == 403
    assert Credential.objects.count() == 0


def test_viewer_cannot_test(team: Team, client: Any, credential: Credential) -> None:
    client.force_login(make_user(team, "victor", role=Membership.Role.VIEWER))

    response = client.post(reverse("credentials:test", args=[credential.pk]), HTTP_HX_REQUEST="true")

    assert response.status_code == 403
    assert sandbox_requests() == []
    credential.refresh_from_db()
    assert credential.status == Credential.Status.UNTESTED


def test_htmx_test_valid(owner_client: Any, credential: Credential) -> None:
    response = owner_client.post(reverse("credentials:test", args=[credential.pk]), HTTP_HX_REQUEST="true")

    page = text(response)
    assert response.status_code == 200
    # A fragment for hx-swap, not a whole page.
    assert page.lstrip().startswith('<div id="credential-status">')
    assert "<html" not in page
    assert '<span class="badge valid">Valid</span>' in page
    assert "Valid: subscription 'PX Sandbox'." in page
    credential.refresh_from_db()
    assert credential.status == Credential.Status.VALID
    assert credential.tested_at is not None


def test_htmx_test_invalid_key(owner_client: Any, team: Team) -> None:
    credential = Credential(team=team, name="Wrong", region=Credential.Region.SANDBOX)
    credential.set_api_key(WRONG_KEY)
    credential.save()

    response = owner_client.post(reverse("credentials:test", args=[credential.pk]), HTTP_HX_REQUEST="true")

    page = text(response)
    assert '<span class="badge invalid">Invalid</span>' in page
    assert (
        "Invalid: PX rejected the key (HTTP 401: Authentication failed in loginAwareAuthentication:"
        " missing or invalid API key). Check the key and its region."
    ) in page
    assert WRONG_KEY not in page
    credential.refresh_from_db()
    assert credential.status == Credential.Status.INVALID
    assert sandbox_requests()[-1]["key_valid"] is False


def test_test_without_htmx_redirects(owner_client: Any, credential: Credential) -> None:
    response = owner_client.post(reverse("credentials:test", args=[credential.pk]))

    assert response.status_code == 302
    assert response["Location"] == reverse("credentials:detail", args=[credential.pk])
    credential.refresh_from_db()
    assert credential.status == Credential.Status.VALID


def test_other_team_credential_404(client: Any, credential: Credential) -> None:
    client.force_login(make_user(Team.objects.create(name="Other"), "mallory"))

    assert client.get(reverse("credentials:detail", args=[credential.pk])).status_code == 404
    assert client.post(reverse("credentials:test", args=[credential.pk])).status_code == 404
    assert sandbox_requests() == []


def test_edit_replaces_key_and_retests(owner_client: Any, credential: Credential) -> None:
    credential.set_api_key("old-key-that-px-rejects")
    credential.save()
    response = owner_client.post(
        reverse("credentials:edit", args=[credential.pk]),
        {"name": "Sandbox", "region": "SANDBOX", "api_key": SANDBOX_KEY, "rate_limit": 50},
    )
    credential.refresh_from_db()
    assert response.status_code == 302
    assert credential.get_api_key() == SANDBOX_KEY
    assert credential.rate_limit == 50
    assert credential.status == Credential.Status.VALID


def test_edit_blank_key_keeps_stored_key(owner_client: Any, credential: Credential) -> None:
    response = owner_client.post(
        reverse("credentials:edit", args=[credential.pk]),
        {"name": "Renamed", "region": "SANDBOX", "api_key": "", "rate_limit": 200},
    )
    credential.refresh_from_db()
    assert response.status_code == 302
    assert credential.name == "Renamed"
    assert credential.get_api_key() == SANDBOX_KEY
