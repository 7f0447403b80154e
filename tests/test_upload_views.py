"""Uploading Nexsets through the views, with the Django test client."""

from __future__ import annotations

import html
import json
import re
from typing import Any

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.urls import reverse

from nexsets.models import Nexset, Record
from tests.conftest import EVENTS_CSV, USERS_CSV

pytestmark = pytest.mark.django_db

SCHEMA_ROW = re.compile(r'<tr><td class="mono">(.*?)</td><td>(.*?)</td></tr>')
SAMPLE_ROW = re.compile(r"<tr><td>(\d+)</td><td><code>(.*?)</code></td></tr>")


def upload(client: Any, filename: str, content: bytes, name: str = "") -> Any:
    data = {"file": SimpleUploadedFile(filename, content), "name": name}
    return client.post(reverse("nexsets:create"), data)


def append(client: Any, nexset: Nexset, filename: str, content: bytes) -> Any:
    data = {"file": SimpleUploadedFile(filename, content)}
    return client.post(reverse("nexsets:append", args=[nexset.pk]), data, follow=True)


def page_text(response: Any) -> str:
    return html.unescape(response.content.decode())


def table_body(page: str, table_id: str) -> str:
    match = re.search(rf'<table id="{table_id}">(.*?)</table>', page, re.DOTALL)
    assert match, f"no table #{table_id} on the page"
    return match.group(1)


def schema_rows(page: str) -> list[tuple[str, str]]:
    return SCHEMA_ROW.findall(table_body(page, "schema"))


def sample_rows(page: str) -> list[tuple[int, Any]]:
    return [(int(position), json.loads(data)) for position, data in SAMPLE_ROW.findall(table_body(page, "samples"))]


def assert_rejected(response: Any, *fragments: str) -> None:
    """Check that the form came back with the error and that nothing was stored."""
    assert response.status_code == 200
    errors = response.context["form"].errors["file"]
    assert len(errors) == 1
    text = page_text(response)
    for fragment in fragments:
        assert fragment in errors[0]
        assert fragment in text
    assert Nexset.objects.count() == 0
    assert Record.objects.count() == 0


def test_csv_upload_shows_schema(owner_client: Any) -> None:
    response = upload(owner_client, "users.csv", USERS_CSV.encode(), name="Users")

    nexset = Nexset.objects.get()
    assert response.status_code == 302
    assert response["Location"] == reverse("nexsets:detail", args=[nexset.pk])
    assert nexset.name == "Users"
    assert nexset.record_count == 2

    page = page_text(owner_client.get(response["Location"]))
    assert "Stored 2 records from users.csv." in page
    assert schema_rows(page) == [
        ("User ID", "string"),
        ("Job Title", "string"),
        ("Email", "string"),
        ("First Name", "string"),
        ("Last Name", "string"),
        ("Sign-Up Date", "string"),
        ("Role", "string"),
        ("Phone", "string"),
        ("Time Zone", "string"),
    ]
    samples = sample_rows(page)
    assert [position for position, _ in samples] == [1, 2]
    assert samples[0][1] == {
        "User ID": "tinylion155",
        "Job Title": "BigData Engineer",
        "Email": "user1@example.com",
        "First Name": "Alex",
        "Last Name": "Doe",
        "Sign-Up Date": "1559696309000",
        "Role": "Admin",
        "Phone": "(555)-010-0001",
        "Time Zone": "GMT+7",
    }
    assert samples[1][1]["Sign-Up Date"] == "2020-11-29T17:05:23"


def test_csv_upload_infers_types(owner_client: Any) -> None:
    upload(owner_client, "events.csv", EVENTS_CSV.encode())

    nexset = Nexset.objects.get()
    # Without a name the file name is used.
    assert nexset.name == "events.csv"
    page = page_text(owner_client.get(reverse("nexsets:detail", args=[nexset.pk])))
    assert schema_rows(page) == [
        ("Account ID", "integer"),
        ("User ID", "string"),
        ("Event Name", "string"),
        ("Event Date UTC-MS", "integer"),
        ("Source", "string"),
        ("Terms", "string"),
        ("Category", "string"),
    ]
    # CSV values are stored as written, and the types only describe them.
    assert Record.objects.get().data["Account ID"] == "3"


def test_ndjson_upload_works(owner_client: Any) -> None:
    content = b'{"id": "u-1", "seats": 3, "tags": ["a", "b"]}\n{"id": "u-2", "seats": 4.5}\n'

    response = upload(owner_client, "people.ndjson", content)

    assert response.status_code == 302
    nexset = Nexset.objects.get()
    assert nexset.record_count == 2
    assert [record.data for record in nexset.records.order_by("position")] == [
        {"id": "u-1", "seats": 3, "tags": ["a", "b"]},
        {"id": "u-2", "seats": 4.5},
    ]
    page = page_text(owner_client.get(response["Location"]))
    assert schema_rows(page) == [("id", "string"), ("seats", "number"), ("tags", "array")]


def test_json_upload_works(owner_client: Any) -> None:
    records = [
        {"id": "acc-1", "name": "Acme", "plan": {"tier": "gold"}},
        {"id": "acc-2", "name": "Globex", "active": True},
    ]

    response = upload(owner_client, "accounts.json", json.dumps(records).encode())

    assert response.status_code == 302
    nexset = Nexset.objects.get()
    assert [record.data for record in nexset.records.order_by("position")] == records
    page = page_text(owner_client.get(response["Location"]))
    assert [row[0] for row in schema_rows(page)] == ["id", "name", "plan", "active"]
    assert [data for _, data in sample_rows(page)] == records


def test_empty_file_rejected(owner_client: Any) -> None:
    response = upload(owner_client, "empty.csv", b"")

    # Django's FileField rejects an empty upload before the parser reads it.
    assert_rejected(response, "The submitted file is empty.")


def test_whitespace_file_rejected(owner_client: Any) -> None:
    response = upload(owner_client, "blank.txt", b"  \n\n")

    assert_rejected(response, "blank.txt was rejected and nothing was stored", "The file is empty.")


def test_binary_file_rejected(owner_client: Any) -> None:
    png_header = b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR\x00\x00"

    response = upload(owner_client, "logo.png", png_header)

    assert_rejected(
        response,
        "logo.png was rejected and nothing was stored",
        '"logo.png" is not CSV, JSON or NDJSON because it contains binary data (NUL bytes).',
    )


def test_non_utf8_file_rejected(owner_client: Any) -> None:
    response = upload(owner_client, "latin1.csv", "name\r\nJürgen\r\n".encode("latin-1"))

    assert_rejected(response, "latin1.csv was rejected and nothing was stored", "UTF-8")


def test_ragged_csv_row_rejected(owner_client: Any) -> None:
    content = b"id,name\r\n1,Ada\r\n2\r\n3,Grace\r\n"

    response = upload(owner_client, "ragged.csv", content)

    assert_rejected(
        response,
        "ragged.csv was rejected and nothing was stored",
        "Line 3: The row has 1 field, but the header has 2 columns.",
    )


def test_late_bad_row_stores_nothing(owner_client: Any) -> None:
    # More rows than one insert chunk, so some were written before the error.
    rows = "".join(f"{index},name-{index}\r\n" for index in range(1, 1501))
    content = ("id,name\r\n" + rows + "1501,too,many\r\n").encode()

    response = upload(owner_client, "big.csv", content)

    assert_rejected(response, "Line 1502: The row has 3 fields, but the header has 2 columns.")


def test_malformed_json_rejected(owner_client: Any) -> None:
    content = b'[\n{"id": 1},\n{"id": 2,}\n]'

    response = upload(owner_client, "broken.json", content)

    assert_rejected(
        response,
        "broken.json was rejected and nothing was stored",
        "Line 3: The JSON is invalid at column 10 (expecting property name enclosed in double quotes).",
    )


def test_json_scalar_element_rejected(owner_client: Any) -> None:
    response = upload(owner_client, "numbers.json", b'[{"id": 1}, 2]')

    assert_rejected(
        response,
        "Line 1: The array element at index 1 is a number, but every element must be an object",
    )


def test_malformed_ndjson_rejected(owner_client: Any) -> None:
    content = b'{"id": 1}\n{"id" 2}\n{"id": 3}\n'

    response = upload(owner_client, "broken.ndjson", content)

    assert_rejected(response, "Line 2: The JSON is invalid at column 7 (expecting ':' delimiter).")


def test_truncated_ndjson_line_column(owner_client: Any) -> None:
    response = upload(owner_client, "cut.ndjson", b'{"id": 1}\n{"id":\n')

    assert_rejected(response, "Line 2: The JSON is invalid at column 7 (expecting value).")


def test_append_rejected_keeps_records(owner_client: Any) -> None:
    upload(owner_client, "users.csv", USERS_CSV.encode())
    nexset = Nexset.objects.get()

    response = append(owner_client, nexset, "more.csv", b"User ID,Email\r\nx,y,z\r\n")

    page = page_text(response)
    assert "more.csv was rejected and nothing was stored: Line 2: The row has 3 fields" in page
    nexset.refresh_from_db()
    assert nexset.record_count == 2
    assert Record.objects.count() == 2


def test_append_adds_records(owner_client: Any) -> None:
    upload(owner_client, "users.csv", USERS_CSV.encode())
    nexset = Nexset.objects.get()
    more = b"User ID,Email\r\ntinyowl7,owl@example.com\r\n"

    response = append(owner_client, nexset, "more.csv", more)

    assert "Added 1 record from more.csv." in page_text(response)
    nexset.refresh_from_db()
    assert nexset.record_count == 3
    assert nexset.records.get(position=3).data == {"User ID": "tinyowl7", "Email": "owl@example.com"}


def test_long_file_name_truncated(owner_client: Any) -> None:
    filename = "x" * 240 + ".csv"

    response = upload(owner_client, filename, USERS_CSV.encode())

    assert response.status_code == 302
    nexset = Nexset.objects.get()
    assert nexset.name == filename[: Nexset._meta.get_field("name").max_length]


def test_oversized_file_rejected(settings: Any, owner_client: Any) -> None:
    settings.UPLOAD_MAX_BYTES = 100
    content = b"id,name\r\n" + b"".join(b"%d,name-%d\r\n" % (index, index) for index in range(20))

    response = upload(owner_client, "large.csv", content)

    assert_rejected(
        response,
        "large.csv was rejected and nothing was stored",
        "The file is larger than the upload limit of 100 bytes. Split it into smaller files.",
    )
