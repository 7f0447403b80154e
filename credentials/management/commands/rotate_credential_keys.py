"""Re-encrypt every stored API key with the newest key in CREDENTIAL_KEYS."""

from __future__ import annotations

from typing import Any

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError, CommandParser
from django.db import transaction

from credentials import crypto
from credentials.models import Credential


class Command(BaseCommand):
    help = (
        "Re-encrypt every stored API key with the first (newest) key in "
        "CREDENTIAL_KEYS. Keys already written with it are left as they are, so "
        "running the command again changes nothing. When any key cannot be "
        "decrypted, nothing is changed and the credentials are listed."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument(
            "--dry-run",
            action="store_true",
            help="Check and count the credentials without writing anything.",
        )

    def handle(self, *args: Any, **options: Any) -> None:
        with transaction.atomic():
            credentials = list(
                Credential.objects.select_for_update()
                .select_related("team")
                .order_by("pk")
            )
            rotated: list[tuple[Credential, str]] = []
            undecryptable: list[Credential] = []
            current = 0
            for credential in credentials:
                if crypto.uses_newest_key(credential.encrypted_key):
                    current += 1
                    continue
                try:
                    rotated.append(
                        (credential, crypto.rotate(credential.encrypted_key))
                    )
                except crypto.DecryptionError:
                    undecryptable.append(credential)
            if undecryptable:
                raise CommandError(_undecryptable_message(undecryptable))
            if not options["dry_run"]:
                for credential, token in rotated:
                    Credential.objects.filter(pk=credential.pk).update(
                        encrypted_key=token
                    )

        verb = "Would re-encrypt" if options["dry_run"] else "Re-encrypted"
        self.stdout.write(
            f"{verb} {len(rotated)} of {len(credentials)} credentials with the newest "
            f"key; {current} already used it."
        )
        if not options["dry_run"] and len(settings.CREDENTIAL_KEYS) > 1:
            self.stdout.write(
                "Every stored key now uses the first key of CREDENTIAL_KEYS: the "
                "other keys can be removed from it."
            )


def _undecryptable_message(credentials: list[Credential]) -> str:
    listed = "; ".join(
        f"credential {credential.pk} {credential.name!r} of team {credential.team.name!r}"
        for credential in credentials
    )
    return (
        f"{len(credentials)} stored API key(s) cannot be decrypted with any key in "
        f"CREDENTIAL_KEYS, so nothing was changed: {listed}. Add the key they were "
        "written with to CREDENTIAL_KEYS, or delete those credentials and enter "
        "their API keys again, then run the command again."
    )
