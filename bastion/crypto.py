"""Secrets at rest and keyed hashes of device identities."""

import hashlib
import hmac
from functools import cache

from cryptography.fernet import Fernet, InvalidToken, MultiFernet
from django.conf import settings


@cache
def _fernet() -> MultiFernet:
    return MultiFernet([Fernet(key) for key in settings.BASTION_ENCRYPTION_KEYS])


def encrypt(value: str) -> str:
    return _fernet().encrypt(value.encode()).decode()


def decrypt(token: str) -> str:
    """Raises ValueError when no configured key opens the token."""
    try:
        return _fernet().decrypt(token.encode()).decode()
    except InvalidToken:
        raise ValueError("no key in BASTION_ENCRYPTION_KEYS decrypts this value") from None


def rotate(token: str) -> str:
    """Re-encrypts with the newest key; used when an old key is being retired."""
    try:
        return _fernet().rotate(token.encode()).decode()
    except InvalidToken:
        raise ValueError("no key in BASTION_ENCRYPTION_KEYS decrypts this value") from None


@cache
def _identity_key() -> bytes:
    return hashlib.sha256(b"bastion-identity:" + settings.SECRET_KEY.encode()).digest()


def identity_hash(value: str) -> str:
    """A keyed hash of a serial number, UDID or user id; "" stays "" (missing)."""
    if not value:
        return ""
    normalised = value.strip().upper().encode()
    return hmac.new(_identity_key(), normalised, hashlib.sha256).hexdigest()


@cache
def _digest_key() -> bytes:
    return hashlib.sha256(b"bastion-digest:" + settings.SECRET_KEY.encode()).digest()


def keyed_digest(value: str) -> str:
    """A short keyed digest for change detection over values that include identities."""
    return hashlib.blake2b(value.encode(), digest_size=16, key=_digest_key()).hexdigest()
