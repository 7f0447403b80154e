"""Deleting Nexsets, destinations and credentials, and webhook-only Nexsets."""

from __future__ import annotations

import pytest

from credentials.models import Credential
from destinations.models import Destination
from nexsets.models import Nexset, Record
from tests.conftest import template_destination

pytestmark = pytest.mark.django_db


def test_paused_destination_deletes(owner_client, make_nexset, credential):
    destination = template_destination(make_nexset("User ID\nu1\n"), credential)
    response = owner_client.post(f"/destinations/{destination.pk}/delete/")
    assert response.status_code == 302
    assert not Destination.objects.filter(pk=destination.pk).exists()


def test_active_destination_must_pause_first(owner_client, make_nexset, credential):
    destination = template_destination(
        make_nexset("User ID\nu1\n"), credential, status=Destination.Status.ACTIVE
    )
    response = owner_client.post(f"/destinations/{destination.pk}/delete/")
    assert response.status_code == 200
    assert "pause it first" in response.content.decode()
    assert Destination.objects.filter(pk=destination.pk).exists()


def test_nexset_with_destination_is_kept(owner_client, make_nexset, credential):
    nexset = make_nexset("User ID\nu1\n")
    template_destination(nexset, credential)
    response = owner_client.post(f"/nexsets/{nexset.pk}/delete/")
    assert "delete them first" in response.content.decode()
    assert Nexset.objects.filter(pk=nexset.pk).exists()


def test_nexset_deletes_with_records(owner_client, make_nexset):
    nexset = make_nexset("User ID\nu1\nu2\n")
    response = owner_client.post(f"/nexsets/{nexset.pk}/delete/")
    assert response.status_code == 302
    assert not Record.objects.filter(nexset_id=nexset.pk).exists()


def test_used_credential_is_kept(owner_client, make_nexset, credential):
    template_destination(make_nexset("User ID\nu1\n"), credential)
    response = owner_client.post(f"/credentials/{credential.pk}/delete/")
    assert "delete them first" in response.content.decode()
    assert Credential.objects.filter(pk=credential.pk).exists()


def test_unused_credential_deletes(owner_client, credential):
    response = owner_client.post(f"/credentials/{credential.pk}/delete/")
    assert response.status_code == 302
    assert not Credential.objects.filter(pk=credential.pk).exists()


def test_delete_page_asks_first(owner_client, credential):
    response = owner_client.get(f"/credentials/{credential.pk}/delete/")
    assert 'id="confirm-delete"' in response.content.decode()
    assert Credential.objects.filter(pk=credential.pk).exists()


def test_webhook_nexset_starts_empty(owner_client, team):
    response = owner_client.post("/nexsets/new/webhook/", {"name": "Signups"})
    nexset = Nexset.objects.get(team=team)
    assert response.status_code == 302
    assert nexset.source == Nexset.Source.WEBHOOK
    assert nexset.record_count == 0


def test_webhook_nexset_needs_name(owner_client, team):
    owner_client.post("/nexsets/new/webhook/", {"name": ""})
    assert not Nexset.objects.filter(team=team).exists()
