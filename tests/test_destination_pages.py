"""The destination page and its polled runs fragment."""

from __future__ import annotations

import pytest

from destinations.models import Destination
from destinations.runs import pause
from tests.conftest import template_destination

pytestmark = pytest.mark.django_db


@pytest.fixture
def destination(make_nexset, credential):
    return template_destination(
        make_nexset("User ID\nu1\n"),
        credential,
        name="Users to PX",
        status=Destination.Status.ACTIVE,
    )


def test_page_shows_template_label(owner_client, destination):
    response = owner_client.get(f"/destinations/{destination.pk}/")
    assert b"Upsert User" in response.content
    assert b'id="pause"' in response.content


def test_polled_runs_update_header(owner_client, destination):
    pause(destination, "authentication failed: HTTP 401")
    response = owner_client.get(f"/destinations/{destination.pk}/runs/", HTTP_HX_REQUEST="true")
    content = response.content.decode()
    assert 'id="destination-header" hx-swap-oob="true"' in content
    assert "authentication failed: HTTP 401" in content
    assert 'id="activate"' in content


def test_full_page_has_one_header(owner_client, destination):
    response = owner_client.get(f"/destinations/{destination.pk}/")
    assert response.content.decode().count('id="destination-header"') == 1


def test_long_name_is_rejected_not_500(owner_client, destination):
    response = owner_client.post(
        f"/destinations/{destination.pk}/configure/",
        {"name": "x" * 201, "mode": "template", "template": "upsert_user", "product_key": "AP-TEST-2", "action": "save"},
    )
    destination.refresh_from_db()
    assert response.status_code == 200
    assert "shorten it to 200 or fewer" in response.content.decode()
    assert destination.name == "Users to PX"
