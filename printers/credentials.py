"""Encryption of printer credentials at rest (Fernet). Only services.py calls this module."""

import base64
import json
from dataclasses import dataclass

from cryptography.fernet import Fernet, InvalidToken
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.kdf.hkdf import HKDF
from django.conf import settings

from printers.exceptions import CredentialsError

_HKDF_INFO = b"fablab printers credentials v1"


@dataclass(frozen=True)
class Credentials:
    username: str
    secret: str

    def __repr__(self) -> str:
        return f"Credentials(username={self.username!r}, secret='***')"

    __str__ = __repr__


def _fernet() -> Fernet:
    configured = (settings.PRINTER_CREDENTIALS_KEY or "").strip()
    if configured:
        try:
            return Fernet(configured.encode())  # a real Fernet key is used as it is
        except ValueError:
            material = configured.encode()
    else:
        material = settings.SECRET_KEY.encode()
    key = HKDF(algorithm=hashes.SHA256(), length=32, salt=None, info=_HKDF_INFO).derive(material)
    return Fernet(base64.urlsafe_b64encode(key))


def encrypt(credentials: Credentials) -> bytes:
    plain = json.dumps({"username": credentials.username, "secret": credentials.secret}).encode()
    return _fernet().encrypt(plain)


def decrypt(ciphertext: bytes) -> Credentials:
    try:
        data = json.loads(_fernet().decrypt(bytes(ciphertext)))
    except (InvalidToken, ValueError, TypeError):
        raise CredentialsError(
            "The stored printer credentials cannot be decrypted (was PRINTER_CREDENTIALS_KEY or SECRET_KEY "
            "changed?). Enter them again."
        ) from None
    return Credentials(username=data.get("username", ""), secret=data.get("secret", ""))
