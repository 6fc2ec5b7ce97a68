"""Providers' signing secrets at rest: AES-GCM under a key that is not in the database.

A database dump (a backup, a read replica, a leaked export) holds only
ciphertexts; signing a payment also needs PAYMENTS_SECRET_KEY, or SECRET_KEY
from which the key is derived when it is unset. The provider's key id is the
associated data, so a ciphertext copied onto another provider's row does not
decrypt.
"""

from __future__ import annotations

import base64
import os
import secrets
from functools import lru_cache

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.hkdf import HKDF
from django.conf import settings

_VERSION = "v1"


class SecretUnreadable(Exception):
    """The stored secret does not decrypt with this server's key (another key, or tampered)."""


@lru_cache(maxsize=4)
def _key(material: str) -> bytes:
    return HKDF(
        algorithm=hashes.SHA256(), length=32, salt=b"selfcare-payments", info=b"provider signing secrets"
    ).derive(material.encode())


def _aead() -> AESGCM:
    return AESGCM(_key(settings.PAYMENTS_SECRET_KEY or settings.SECRET_KEY))


def secret_generate() -> str:
    """A new signing secret: 256 bits, printable, to be shown to the provider once."""
    return "sk_" + secrets.token_urlsafe(32)


def secret_seal(secret: str, *, key_id: str) -> str:
    nonce = os.urandom(12)
    sealed = _aead().encrypt(nonce, secret.encode(), key_id.encode())
    return f"{_VERSION}:" + base64.urlsafe_b64encode(nonce + sealed).decode()


def secret_open(token: str, *, key_id: str) -> str:
    version, _, data = token.partition(":")
    if version != _VERSION:
        raise SecretUnreadable(f"unknown format {version!r}")
    raw = base64.urlsafe_b64decode(data)
    try:
        return _aead().decrypt(raw[:12], raw[12:], key_id.encode()).decode()
    except InvalidTag:
        raise SecretUnreadable("the secret does not decrypt with this server's key") from None
