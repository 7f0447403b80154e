"""Catalogue of the endpoint templates a destination can use.

Each template sends one record per request. The request flow per template:

- Upsert (account or user): PUT the record to the id-in-body update endpoint, which
  avoids URL-encoding ids. On 404, POST it to the create endpoint. If that POST
  returns 400 "possible duplicate" because another writer created the record in
  the meantime, PUT once more.
- Update (account or user): PUT only. A 404 fails the record as not found, and the
  template never creates a record.
- Track Custom Event: POST one event per request. The PX contract (Swagger
  version 0.1.6) defines no batch body and no way to delete an event, so a retried
  POST can record the event twice.

PX has no native upsert endpoint, so the upsert flow is built from update and
create calls.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Template:
    """Endpoint template: which PX object it writes and the request it starts with.

    ``method`` and ``path`` give the first request for every record. ``creates``
    is True when the template can create PX records (upserts and events do,
    updates never do). Only upserts set ``create_method`` and ``create_path``, the
    request sent when the first one returns 404.
    """

    key: str
    label: str
    object_type: str
    key_field: str
    description: str
    method: str
    path: str
    creates: bool
    create_method: str | None = None
    create_path: str | None = None


TEMPLATES: dict[str, Template] = {
    "upsert_account": Template(
        key="upsert_account",
        label="Upsert Account",
        object_type="account",
        key_field="id",
        description=(
            "Updates the account with the matching Account ID (id) through"
            " PUT /v1/accounts/update. If PX has no such account, creates it"
            " through POST /v1/accounts."
        ),
        method="PUT",
        path="/v1/accounts/update",
        creates=True,
        create_method="POST",
        create_path="/v1/accounts",
    ),
    "update_account": Template(
        key="update_account",
        label="Update Account",
        object_type="account",
        key_field="id",
        description=(
            "Updates the account with the matching Account ID (id) through"
            " PUT /v1/accounts/update. Never creates accounts: a record whose"
            " account does not exist fails with account not found."
        ),
        method="PUT",
        path="/v1/accounts/update",
        creates=False,
    ),
    "upsert_user": Template(
        key="upsert_user",
        label="Upsert User",
        object_type="user",
        key_field="identifyId",
        description=(
            "Updates the user with the matching Identify ID (identifyId) through"
            " PUT /v1/users/update. If PX has no such user, creates it through"
            " POST /v1/users."
        ),
        method="PUT",
        path="/v1/users/update",
        creates=True,
        create_method="POST",
        create_path="/v1/users",
    ),
    "update_user": Template(
        key="update_user",
        label="Update User",
        object_type="user",
        key_field="identifyId",
        description=(
            "Updates the user with the matching Identify ID (identifyId) through"
            " PUT /v1/users/update. Never creates users: a record whose user does"
            " not exist fails with user not found."
        ),
        method="PUT",
        path="/v1/users/update",
        creates=False,
    ),
    "track_event": Template(
        key="track_event",
        label="Track Custom Event",
        object_type="event",
        key_field="identifyId",
        description=(
            "Sends each record as one custom event through POST /v1/events/custom,"
            " recorded for the user with the matching Identify ID (identifyId)."
        ),
        method="POST",
        path="/v1/events/custom",
        creates=True,
    ),
}


def get_template(template_key: str) -> Template:
    """Return the template for ``template_key``, or raise ValueError naming it."""
    try:
        return TEMPLATES[template_key]
    except KeyError:
        known = ", ".join(TEMPLATES)
        raise ValueError(
            f"unknown template {template_key!r}: use one of {known}"
        ) from None
