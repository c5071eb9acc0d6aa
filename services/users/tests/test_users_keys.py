"""Signing keys and JWKS, and the shared verifier's verdict on what this service issues (no database)."""

from __future__ import annotations

import base64
import hashlib
import json
import time
import uuid
from datetime import timedelta
from pathlib import Path

import jwt
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey
from cryptography.hazmat.primitives.asymmetric.rsa import generate_private_key

from shared.auth.verifier import StaticKeySource, TokenVerifier
from shared.errors import Unauthorized
from users.settings import Settings
from users.tokens.access import AccessTokenIssuer
from users.tokens.keys import KeyFileError, KeySet, SigningKey, load_key_set, private_key_pem, public_jwk

ISSUER, AUDIENCE = "http://users", "api"


def b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


@pytest.fixture
def key() -> SigningKey:
    return SigningKey.of(Ed25519PrivateKey.generate())


def verifier_for(keys: KeySet) -> TokenVerifier:
    return TokenVerifier(StaticKeySource(keys.jwks()), issuer=ISSUER, audience=AUDIENCE)


def issuer_for(key: SigningKey, ttl: int = 900) -> AccessTokenIssuer:
    return AccessTokenIssuer(key, issuer=ISSUER, audience=AUDIENCE, ttl=timedelta(seconds=ttl))


def test_kid_is_the_rfc7638_thumbprint(key: SigningKey) -> None:
    jwk = public_jwk(key.private_key.public_key())
    canonical = '{"crv":"Ed25519","kty":"OKP","x":"' + jwk["x"] + '"}'
    assert jwk["kid"] == b64url(hashlib.sha256(canonical.encode()).digest())
    assert jwk["kid"] == key.kid
    assert {k: jwk[k] for k in ("kty", "crv", "alg", "use")} == {
        "kty": "OKP",
        "crv": "Ed25519",
        "alg": "EdDSA",
        "use": "sig",
    }


def test_kid_matches_the_rfc8037_test_vector() -> None:
    # RFC 8037 appendix A.3: the thumbprint of the example Ed25519 key.
    x = "11qYAYKxCrfVS_7TyWQHOg7hcvPapiMlrwIaaPcHURo"
    public = Ed25519PublicKey.from_public_bytes(base64.urlsafe_b64decode(x + "="))
    assert public_jwk(public)["kid"] == "kPrK_qmxVWaYVA9wwBF6Iuo3vVzz7TxHCTwXBygrS4k"


async def test_issued_token_passes_the_shared_verifier(key: SigningKey) -> None:
    user_id = uuid.uuid4()
    token = issuer_for(key).issue(user_id, ["user", "admin"], name="Ada Lovelace").token
    principal = await verifier_for(KeySet(key)).verify(token)
    assert principal.user_id == user_id
    assert principal.roles == ("user", "admin")
    assert principal.is_admin
    assert principal.name == "Ada Lovelace"


async def test_expired_token_is_refused(key: SigningKey) -> None:
    token = issuer_for(key, ttl=60).issue(uuid.uuid4(), ["user"], now=time.time() - 3600).token
    with pytest.raises(Unauthorized, match="expired"):
        await verifier_for(KeySet(key)).verify(token)


async def test_tampered_token_is_refused(key: SigningKey) -> None:
    token = issuer_for(key).issue(uuid.uuid4(), ["user"]).token
    header, payload, signature = token.split(".")
    claims = json.loads(base64.urlsafe_b64decode(payload + "=="))
    claims["roles"] = ["user", "admin"]
    forged = ".".join([header, b64url(json.dumps(claims).encode()), signature])
    with pytest.raises(Unauthorized):
        await verifier_for(KeySet(key)).verify(forged)


async def test_alg_none_is_refused(key: SigningKey) -> None:
    claims = {"iss": ISSUER, "aud": AUDIENCE, "sub": "x", "exp": int(time.time()) + 60, "iat": 0, "jti": "j"}
    token = jwt.encode(claims, None, algorithm="none", headers={"kid": key.kid})  # type: ignore[arg-type]
    with pytest.raises(Unauthorized):
        await verifier_for(KeySet(key)).verify(token)


async def test_hs256_signed_with_the_public_key_is_refused(key: SigningKey) -> None:
    # The classic confusion attack: HMAC keyed with the published public key.
    public = public_jwk(key.private_key.public_key())["x"].encode()
    claims = {"iss": ISSUER, "aud": AUDIENCE, "sub": "x", "exp": int(time.time()) + 60, "iat": 0, "jti": "j"}
    token = jwt.encode(claims, public * 2, algorithm="HS256", headers={"kid": key.kid})
    with pytest.raises(Unauthorized):
        await verifier_for(KeySet(key)).verify(token)


async def test_token_from_another_key_is_refused(key: SigningKey) -> None:
    stranger = SigningKey.of(Ed25519PrivateKey.generate())
    token = issuer_for(stranger).issue(uuid.uuid4(), ["user"]).token
    with pytest.raises(Unauthorized):
        await verifier_for(KeySet(key)).verify(token)


async def test_wrong_audience_is_refused(key: SigningKey) -> None:
    token = AccessTokenIssuer(key, issuer=ISSUER, audience="other", ttl=timedelta(minutes=5)).issue(
        uuid.uuid4(), ["user"]
    )
    with pytest.raises(Unauthorized):
        await verifier_for(KeySet(key)).verify(token.token)


def write_pem(path: Path, key: Ed25519PrivateKey) -> Path:
    path.write_bytes(private_key_pem(key))
    return path


async def test_rotation_publishes_the_old_key_so_old_tokens_still_verify(tmp_path: Path) -> None:
    old, new = Ed25519PrivateKey.generate(), Ed25519PrivateKey.generate()
    old_public = tmp_path / "old.pub.pem"
    old_public.write_bytes(
        old.public_key().public_bytes(
            serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
        )
    )
    settings = Settings(
        environment="test",
        jwt_private_key_file=write_pem(tmp_path / "new.pem", new),
        jwt_extra_public_key_files=[old_public, write_pem(tmp_path / "old.pem", old)],
    )
    keys = load_key_set(settings)
    assert [k["kid"] for k in keys.jwks()["keys"]] == [SigningKey.of(new).kid, SigningKey.of(old).kid]
    old_token = issuer_for(SigningKey.of(old)).issue(uuid.uuid4(), ["user"]).token
    assert (await verifier_for(keys).verify(old_token)).roles == ("user",)


def test_no_key_file_outside_production_means_an_ephemeral_key(caplog: pytest.LogCaptureFixture) -> None:
    first = load_key_set(Settings(environment="development", jwt_private_key_file=None))
    second = load_key_set(Settings(environment="development", jwt_private_key_file=None))
    assert first.signing.kid != second.signing.kid
    assert "ephemeral" in caplog.text


def test_unusable_key_files_are_refused_with_a_clear_error(tmp_path: Path) -> None:
    rsa = generate_private_key(public_exponent=65537, key_size=2048)
    rsa_file = tmp_path / "rsa.pem"
    rsa_file.write_bytes(
        rsa.private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
        )
    )
    garbage = tmp_path / "garbage.pem"
    garbage.write_text("not a key")
    for path in (rsa_file, garbage, tmp_path / "missing.pem"):
        with pytest.raises(KeyFileError):
            load_key_set(Settings(environment="test", jwt_private_key_file=path))
