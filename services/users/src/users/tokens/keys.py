"""Ed25519 signing keys and the JWKS that publishes them.

The key id is the RFC 7638 thumbprint, so it is stable for a key and identical on every replica
that loads the same PEM file.
"""

from __future__ import annotations

import base64
import hashlib
import json
import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

from users.settings import Settings

log = logging.getLogger(__name__)

ALGORITHM = "EdDSA"


class KeyFileError(ValueError):
    """A configured key file is missing, unreadable or not an Ed25519 key."""


def _b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def public_jwk(key: Ed25519PublicKey) -> dict[str, str]:
    raw = key.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
    members = {"crv": "Ed25519", "kty": "OKP", "x": _b64url(raw)}
    # RFC 7638: the required members only, sorted, no whitespace, then SHA-256.
    canonical = json.dumps(members, sort_keys=True, separators=(",", ":")).encode()
    return {**members, "kid": _b64url(hashlib.sha256(canonical).digest()), "alg": ALGORITHM, "use": "sig"}


@dataclass(frozen=True, slots=True)
class SigningKey:
    private_key: Ed25519PrivateKey
    kid: str

    @classmethod
    def of(cls, private_key: Ed25519PrivateKey) -> SigningKey:
        return cls(private_key, public_jwk(private_key.public_key())["kid"])


@dataclass(frozen=True, slots=True)
class KeySet:
    """The key that signs new tokens plus older public keys that still verify."""

    signing: SigningKey
    extra_public: tuple[Ed25519PublicKey, ...] = ()

    def jwks(self) -> dict[str, Any]:
        keys = [public_jwk(self.signing.private_key.public_key())]
        seen = {keys[0]["kid"]}
        for extra in self.extra_public:
            jwk = public_jwk(extra)
            if jwk["kid"] not in seen:
                seen.add(jwk["kid"])
                keys.append(jwk)
        return {"keys": keys}


def _read(path: Path) -> bytes:
    try:
        return path.read_bytes()
    except OSError as exc:
        raise KeyFileError(f"cannot read key file {path}: {exc.strerror}") from exc


def load_private_key(path: Path) -> Ed25519PrivateKey:
    try:
        key = serialization.load_pem_private_key(_read(path), password=None)
    except (ValueError, TypeError) as exc:
        raise KeyFileError(f"{path} is not an unencrypted PEM private key") from exc
    if not isinstance(key, Ed25519PrivateKey):
        raise KeyFileError(f"{path} is not an Ed25519 key")
    return key


def load_public_key(path: Path) -> Ed25519PublicKey:
    """A PEM public key, or the public half of a retired PEM private key."""
    data = _read(path)
    try:
        key: object = serialization.load_pem_public_key(data)
    except ValueError:
        try:
            key = serialization.load_pem_private_key(data, password=None).public_key()
        except (ValueError, TypeError) as exc:
            raise KeyFileError(f"{path} is not a PEM Ed25519 key") from exc
    if not isinstance(key, Ed25519PublicKey):
        raise KeyFileError(f"{path} is not an Ed25519 key")
    return key


def load_key_set(settings: Settings) -> KeySet:
    if settings.jwt_private_key_file is not None:
        private = load_private_key(settings.jwt_private_key_file)
    else:
        # Settings refuse this in production; elsewhere tokens die with the process, and
        # replicas do not accept each other's tokens.
        log.warning("USERS_JWT_PRIVATE_KEY_FILE is not set; signing with an ephemeral key")
        private = Ed25519PrivateKey.generate()
    extras = tuple(load_public_key(path) for path in settings.jwt_extra_public_key_files)
    return KeySet(SigningKey.of(private), extras)


def private_key_pem(key: Ed25519PrivateKey) -> bytes:
    """PKCS#8 PEM, the format ``USERS_JWT_PRIVATE_KEY_FILE`` expects."""
    return key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )
