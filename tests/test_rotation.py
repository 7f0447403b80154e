"""Rotation of the keys that encrypt stored API keys (CREDENTIAL_KEYS)."""

from __future__ import annotations

import io
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from cryptography.fernet import Fernet
from django.core.management import CommandError, call_command

from credentials import crypto
from credentials.models import Credential
from teams.models import Team

pytestmark = pytest.mark.django_db

BASE_DIR = Path(__file__).resolve().parent.parent
KEY_A = Fernet.generate_key().decode()
KEY_B = Fernet.generate_key().decode()
KEY_UNKNOWN = Fernet.generate_key().decode()


def store(team: Team, name: str, api_key: str) -> Credential:
    credential = Credential(team=team, name=name, region=Credential.Region.US)
    credential.set_api_key(api_key)
    credential.save()
    return credential


def stored_token(credential: Credential) -> str:
    return Credential.objects.values_list("encrypted_key", flat=True).get(pk=credential.pk)


def rotate_keys(*args: str) -> str:
    output = io.StringIO()
    call_command("rotate_credential_keys", *args, stdout=output)
    return output.getvalue()


@pytest.fixture
def team(db: None) -> Team:
    return Team.objects.create(name="Acme data")


def test_old_key_still_decrypts_after_new_key_added(team, settings):
    settings.CREDENTIAL_KEYS = [KEY_A]
    credential = store(team, "Production", "px-key-0001")
    settings.CREDENTIAL_KEYS = [KEY_B, KEY_A]
    assert Credential.objects.get(pk=credential.pk).get_api_key() == "px-key-0001"


def test_new_credentials_use_newest_key(team, settings):
    settings.CREDENTIAL_KEYS = [KEY_B, KEY_A]
    credential = store(team, "Production", "px-key-0001")
    assert Fernet(KEY_B).decrypt(stored_token(credential).encode()) == b"px-key-0001"


def test_rotation_reencrypts_with_newest_key(team, settings):
    settings.CREDENTIAL_KEYS = [KEY_A]
    first = store(team, "Production", "px-key-0001")
    second = store(team, "Staging", "px-key-0002")
    before = {first.pk: stored_token(first), second.pk: stored_token(second)}

    settings.CREDENTIAL_KEYS = [KEY_B, KEY_A]
    output = rotate_keys()
    assert "Re-encrypted 2 of 2 credentials" in output
    assert "0 already used it" in output

    settings.CREDENTIAL_KEYS = [KEY_B]
    for credential, plaintext in ((first, "px-key-0001"), (second, "px-key-0002")):
        token = stored_token(credential)
        assert token != before[credential.pk]
        assert Credential.objects.get(pk=credential.pk).get_api_key() == plaintext


def test_rotation_is_idempotent(team, settings):
    settings.CREDENTIAL_KEYS = [KEY_A]
    credential = store(team, "Production", "px-key-0001")
    settings.CREDENTIAL_KEYS = [KEY_B, KEY_A]
    rotate_keys()
    token = stored_token(credential)

    output = rotate_keys()
    assert "Re-encrypted 0 of 1 credentials" in output
    assert "1 already used it" in output
    assert stored_token(credential) == token


def test_rotation_dry_run_writes_nothing(team, settings):
    settings.CREDENTIAL_KEYS = [KEY_A]
    credential = store(team, "Production", "px-key-0001")
    token = stored_token(credential)
    settings.CREDENTIAL_KEYS = [KEY_B, KEY_A]
    output = rotate_keys("--dry-run")
    assert "Would re-encrypt 1 of 1 credentials" in output
    assert stored_token(credential) == token


def test_rotation_names_undecryptable_credential(team, settings):
    settings.CREDENTIAL_KEYS = [KEY_A]
    readable = store(team, "Production", "px-key-0001")
    settings.CREDENTIAL_KEYS = [KEY_UNKNOWN]
    lost = store(team, "Written elsewhere", "px-key-0002")
    tokens = {readable.pk: stored_token(readable), lost.pk: stored_token(lost)}

    settings.CREDENTIAL_KEYS = [KEY_B, KEY_A]
    with pytest.raises(CommandError) as error:
        rotate_keys()
    message = str(error.value)
    assert f"credential {lost.pk} 'Written elsewhere' of team 'Acme data'" in message
    assert "Production" not in message
    assert "nothing was changed" in message
    # All or nothing: the readable credential keeps its old token too.
    assert stored_token(readable) == tokens[readable.pk]
    assert stored_token(lost) == tokens[lost.pk]


def test_decryption_error_names_no_key(team, settings):
    settings.CREDENTIAL_KEYS = [KEY_UNKNOWN]
    credential = store(team, "Production", "px-key-0001")
    settings.CREDENTIAL_KEYS = [KEY_A]
    with pytest.raises(crypto.DecryptionError) as error:
        crypto.decrypt(stored_token(credential), label="Credential 'Production'")
    assert str(error.value).startswith("Credential 'Production' cannot be decrypted")
    assert KEY_A not in str(error.value)


def run_manage(env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "manage.py", *args],
        cwd=BASE_DIR, env=env, capture_output=True, text=True, timeout=60,
    )


def test_invalid_credential_key_is_rejected_at_startup():
    env: dict[str, Any] = dict(os.environ)
    env.update(DEBUG="true", CREDENTIAL_KEYS=f"{KEY_A},not-a-fernet-key")
    result = run_manage(env, "check")
    assert result.returncode != 0
    assert "CREDENTIAL_KEYS entry 2 is not a Fernet key" in result.stderr
    assert KEY_A not in result.stderr
    assert "not-a-fernet-key" not in result.stderr
