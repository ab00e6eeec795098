"""Secrets encrypted with the platform's Fernet keys: the first encrypts, all decrypt, rotation moves to the first."""

from __future__ import annotations

import pytest
from cryptography.fernet import Fernet
from django.test import override_settings

from voicedesk.core.secrets import (
    SecretsUnavailableError,
    SecretUnreadableError,
    secret_decrypt,
    secret_encrypt,
    secret_rotate,
)

OLD = Fernet.generate_key().decode()
NEW = Fernet.generate_key().decode()


def test_a_secret_comes_back_from_its_token_and_the_token_does_not_hold_it() -> None:
    with override_settings(VOICEDESK_SECRET_KEYS=[OLD]):
        token = secret_encrypt("sk-live-abcdef123456")

        assert secret_decrypt(token) == "sk-live-abcdef123456"
    assert "abcdef123456" not in token
    assert Fernet(OLD.encode()).decrypt(token.encode()) == b"sk-live-abcdef123456"


def test_the_first_key_encrypts_and_every_key_decrypts() -> None:
    with override_settings(VOICEDESK_SECRET_KEYS=[OLD]):
        old_token = secret_encrypt("key-one-1234")
    with override_settings(VOICEDESK_SECRET_KEYS=[NEW, OLD]):
        new_token = secret_encrypt("key-two-5678")

        assert secret_decrypt(old_token) == "key-one-1234"
        assert secret_decrypt(new_token) == "key-two-5678"
    assert Fernet(NEW.encode()).decrypt(new_token.encode()) == b"key-two-5678"
    with override_settings(VOICEDESK_SECRET_KEYS=[OLD]), pytest.raises(SecretUnreadableError):
        secret_decrypt(new_token)


def test_rotation_re_encrypts_with_the_first_key_so_the_old_key_can_go() -> None:
    with override_settings(VOICEDESK_SECRET_KEYS=[OLD]):
        token = secret_encrypt("key-three-9012")
    with override_settings(VOICEDESK_SECRET_KEYS=[NEW, OLD]):
        rotated = secret_rotate(token)
    with override_settings(VOICEDESK_SECRET_KEYS=[NEW]):
        assert secret_decrypt(rotated) == "key-three-9012"
        with pytest.raises(SecretUnreadableError):
            secret_decrypt(token)
        with pytest.raises(SecretUnreadableError):
            secret_rotate(token)


def test_no_keys_or_a_malformed_key_is_a_clear_error_that_does_not_repeat_the_key() -> None:
    with override_settings(VOICEDESK_SECRET_KEYS=[]), pytest.raises(SecretsUnavailableError, match="not set"):
        secret_encrypt("anything-1234")
    with (
        override_settings(VOICEDESK_SECRET_KEYS=["not-a-fernet-key"]),
        pytest.raises(SecretsUnavailableError, match="not a Fernet key") as raised,
    ):
        secret_encrypt("anything-1234")
    assert "not-a-fernet-key" not in str(raised.value)
