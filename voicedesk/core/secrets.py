"""Secrets stored in the database, encrypted with the platform's keys (Fernet).

``VOICEDESK_SECRET_KEYS`` lists Fernet keys, newest first: the first
encrypts, every one decrypts. To rotate, put a new key first, run
``manage.py provider_keys_rotate`` (which re-encrypts every stored secret
with it), then drop the old key. Plain text never leaves this module except
to the caller that asked for it; errors never carry it.
"""

from __future__ import annotations

import functools

from cryptography.fernet import Fernet, InvalidToken, MultiFernet
from django.conf import settings


class SecretsUnavailableError(RuntimeError):
    """The platform has no encryption keys set, or a key is malformed."""


class SecretUnreadableError(ValueError):
    """A stored secret that none of the platform's keys decrypts."""


@functools.lru_cache(maxsize=4)
def _box(keys: tuple[str, ...]) -> MultiFernet:
    if not keys:
        raise SecretsUnavailableError("VOICEDESK_SECRET_KEYS is not set: stored secrets cannot be encrypted.")
    try:
        return MultiFernet([Fernet(key.encode()) for key in keys])
    except ValueError:
        # Fernet's message would not name the setting; the key itself is never repeated.
        raise SecretsUnavailableError(
            "VOICEDESK_SECRET_KEYS holds a key that is not a Fernet key (32 url-safe base64-encoded bytes)."
        ) from None


def secret_box() -> MultiFernet:
    """The platform's keys as one ``MultiFernet`` (first encrypts, all decrypt)."""
    keys = tuple(key.strip() for key in settings.VOICEDESK_SECRET_KEYS if key.strip())
    return _box(keys)


def secret_encrypt(plain: str) -> str:
    """``plain`` encrypted with the first key, as an ASCII token."""
    return secret_box().encrypt(plain.encode()).decode("ascii")


def secret_decrypt(token: str) -> str:
    """The plain text of ``token``; ``SecretUnreadableError`` if no key opens it."""
    try:
        return secret_box().decrypt(token.encode("ascii")).decode()
    except InvalidToken:
        raise SecretUnreadableError("a stored secret could not be decrypted with any configured key") from None


def secret_rotate(token: str) -> str:
    """``token`` re-encrypted with the first key (its original timestamp kept)."""
    try:
        return secret_box().rotate(token.encode("ascii")).decode("ascii")
    except InvalidToken:
        raise SecretUnreadableError("a stored secret could not be decrypted with any configured key") from None
