"""Storing records in a Nexset: uploads, webhook posts and destination responses."""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from itertools import islice
from typing import BinaryIO

from django.conf import settings
from django.db import connection, transaction
from django.db.models import Max
from django.utils import timezone
from psycopg.types.json import Jsonb

from nexsets.models import Nexset, Record
from nexsets.parsing import iter_records
from nexsets.schema import SchemaBuilder
from teams.models import Team

INSERT_CHUNK = 1000

# Types that widen into each other; any other disagreement becomes "string".
_WIDER = {
    frozenset({"integer", "number"}): "number",
    frozenset({"date", "datetime"}): "datetime",
}


def merge_type(old: str, new: str) -> str:
    if old == new or new == "null":
        return old
    if old == "null":
        return new
    return _WIDER.get(frozenset({old, new}), "string")


def merge_schema(old: list[dict], new: list[dict]) -> list[dict]:
    merged = {attribute["name"]: attribute["type"] for attribute in old}
    for attribute in new:
        name = attribute["name"]
        merged[name] = (
            merge_type(merged[name], attribute["type"])
            if name in merged
            else attribute["type"]
        )
    return [{"name": name, "type": kind} for name, kind in merged.items()]


def create_from_upload(
    team: Team, name: str, fileobj: BinaryIO, filename: str
) -> Nexset:
    """Create a Nexset from an uploaded file, or raise UploadError and store nothing."""
    records = iter_records(fileobj, filename, max_bytes=settings.UPLOAD_MAX_BYTES)
    with transaction.atomic():
        nexset = Nexset.objects.create(
            team=team, name=name, source=Nexset.Source.UPLOAD
        )
        append_records(nexset, records)
    return nexset


def append_upload(nexset: Nexset, fileobj: BinaryIO, filename: str) -> int:
    """Add an uploaded file's records to an existing Nexset, all or nothing."""
    records = iter_records(fileobj, filename, max_bytes=settings.UPLOAD_MAX_BYTES)
    return append_records(nexset, records)


def append_records(nexset: Nexset, records: Iterable[dict]) -> int:
    """Store records after the Nexset's last one and widen its schema.

    Runs in one transaction, so an error raised by the record iterator (a bad
    line late in an upload) stores nothing. Active destinations of the Nexset
    get a run for the new records once the transaction commits.
    """
    builder = SchemaBuilder()

    def observed(items: Iterable[dict]) -> Iterator[dict]:
        for record in items:
            builder.add(record)
            yield record

    with transaction.atomic():
        locked = Nexset.objects.select_for_update().get(pk=nexset.pk)
        last = locked.records.aggregate(last=Max("position"))["last"] or 0
        position = last
        count = 0
        stream = observed(records)
        if connection.vendor == "postgresql":
            count = _copy_records(locked, stream, first_position=last + 1)
        else:
            while chunk := list(islice(stream, INSERT_CHUNK)):
                rows = []
                for record in chunk:
                    position += 1
                    rows.append(Record(nexset=locked, position=position, data=record))
                Record.objects.bulk_create(rows)
                count += len(rows)
        new_schema = [{"name": a.name, "type": a.type} for a in builder.attributes()]
        locked.schema = merge_schema(locked.schema, new_schema)
        locked.record_count = last + count
        locked.save(update_fields=["schema", "record_count", "updated"])
        nexset.schema = locked.schema
        nexset.record_count = locked.record_count
        if count:
            transaction.on_commit(lambda: _notify_destinations(locked.pk))
    return count


def _copy_records(nexset: Nexset, records: Iterable[dict], first_position: int) -> int:
    """Stream records into PostgreSQL with COPY; return how many were written.

    COPY writes several times faster than INSERT for large uploads, and runs
    inside the caller's transaction, so an error still stores nothing.
    """
    table = Record._meta.db_table
    columns = ", ".join(
        connection.ops.quote_name(Record._meta.get_field(name).column)
        for name in ("nexset", "position", "data", "created")
    )
    created = timezone.now()
    count = 0
    with connection.cursor() as cursor:
        raw = cursor.cursor  # the psycopg cursor under Django's wrapper
        with raw.copy(
            f"COPY {connection.ops.quote_name(table)} ({columns}) FROM STDIN"
        ) as copy:
            for count, record in enumerate(records, start=1):
                copy.write_row(
                    (nexset.pk, first_position + count - 1, Jsonb(record), created)
                )
    return count


def _notify_destinations(nexset_id: int) -> None:
    from destinations.runs import start_incremental_runs

    start_incremental_runs(nexset_id)
