"""Encryption of stored API keys with the Fernet keys listed in CREDENTIAL_KEYS.

CREDENTIAL_KEYS is ordered newest first: the first key encrypts, and every key
decrypts. To rotate, put a new key first, run `manage.py
rotate_credential_keys`, then remove the old keys.
"""

from __future__ import annotations

from cryptography.fernet import Fernet, InvalidToken, MultiFernet
from django.conf import settings


class DecryptionError(Exception):
    """A stored token was not written with any key in CREDENTIAL_KEYS."""


def _keys() -> list[Fernet]:
    return [Fernet(key.encode()) for key in settings.CREDENTIAL_KEYS]


def _fernet() -> MultiFernet:
    return MultiFernet(_keys())


def _decryption_error(label: str) -> DecryptionError:
    return DecryptionError(
        f"{label} cannot be decrypted with any key in CREDENTIAL_KEYS; "
        "add the key it was written with back to CREDENTIAL_KEYS"
    )


def encrypt(plaintext: str) -> str:
    return _fernet().encrypt(plaintext.encode()).decode()


def decrypt(token: str, *, label: str = "The stored API key") -> str:
    """Decrypt a token; `label` names its owner in the DecryptionError message."""
    try:
        return _fernet().decrypt(token.encode()).decode()
    except InvalidToken:
        raise _decryption_error(label) from None


def uses_newest_key(token: str) -> bool:
    """Return whether the token was written with the first key of CREDENTIAL_KEYS."""
    try:
        _keys()[0].decrypt(token.encode())
    except InvalidToken:
        return False
    return True


def rotate(token: str, *, label: str = "The stored API key") -> str:
    """Re-encrypt a token with the newest key; raise DecryptionError if no key fits."""
    try:
        return _fernet().rotate(token.encode()).decode()
    except InvalidToken:
        raise _decryption_error(label) from None
