"""The shared token verifier refuses everything but a well-signed, current, well-addressed token."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import time
import uuid
from typing import Any

import httpx
import jwt
import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from jwt import PyJWK

from shared.auth.verifier import JwksKeySource, StaticKeySource, TokenVerifier, bearer_token, parse_jwks
from shared.errors import Unauthorized

ISSUER, AUDIENCE = "http://users", "api"


def make_key() -> tuple[Ed25519PrivateKey, dict[str, Any]]:
    key = Ed25519PrivateKey.generate()
    jwk: dict[str, Any] = jwt.algorithms.OKPAlgorithm.to_jwk(key.public_key(), as_dict=True)
    jwk.update({"kid": uuid.uuid4().hex, "alg": "EdDSA", "use": "sig"})
    return key, jwk


def claims(**overrides: Any) -> dict[str, Any]:
    now = int(time.time())
    base = {
        "iss": ISSUER,
        "aud": AUDIENCE,
        "sub": str(uuid.uuid4()),
        "iat": now,
        "exp": now + 300,
        "jti": uuid.uuid4().hex,
        "roles": ["user"],
    }
    base.update(overrides)
    return base


class CountingSource:
    """A key source that learns a new key only when asked to refresh, and counts the asks."""

    def __init__(self, initial: list[dict[str, Any]]) -> None:
        self.document = {"keys": initial}
        self.pending: list[dict[str, Any]] = []
        self.refreshes = 0

    async def get_keys(self, *, refresh: bool = False) -> dict[str, PyJWK]:
        if refresh:
            self.refreshes += 1
            self.document["keys"] = self.document["keys"] + self.pending
        return parse_jwks(self.document)


@pytest.fixture
def signer() -> tuple[Ed25519PrivateKey, dict[str, Any]]:
    return make_key()


def verifier_for(jwk: dict[str, Any]) -> TokenVerifier:
    return TokenVerifier(StaticKeySource({"keys": [jwk]}), issuer=ISSUER, audience=AUDIENCE)


def sign(key: Ed25519PrivateKey, jwk: dict[str, Any], **overrides: Any) -> str:
    return jwt.encode(claims(**overrides), key, algorithm="EdDSA", headers={"kid": jwk["kid"]})


class FakeClock:
    """Time that moves only when a test says so."""

    def __init__(self, now: float) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


async def test_valid_token_gives_principal(signer: tuple[Ed25519PrivateKey, dict[str, Any]]) -> None:
    key, jwk = signer
    user_id = uuid.uuid4()
    token = sign(key, jwk, roles=["user", "admin"], sub=str(user_id))
    principal = await verifier_for(jwk).verify(token)
    assert principal.user_id == user_id
    assert principal.is_admin


@pytest.mark.parametrize("sub", ["u-1", "admin", "", "0" * 33])
async def test_a_subject_that_is_not_a_user_id_is_refused(
    signer: tuple[Ed25519PrivateKey, dict[str, Any]], sub: str
) -> None:
    key, jwk = signer
    with pytest.raises(Unauthorized, match="subject is not a user id"):
        await verifier_for(jwk).verify(sign(key, jwk, sub=sub))


@pytest.mark.parametrize(
    "overrides",
    [
        {"exp": int(time.time()) - 60},
        {"iss": "http://evil"},
        {"aud": "other"},
    ],
    ids=["expired", "wrong-issuer", "wrong-audience"],
)
async def test_bad_claims_are_refused(
    signer: tuple[Ed25519PrivateKey, dict[str, Any]], overrides: dict[str, Any]
) -> None:
    key, jwk = signer
    with pytest.raises(Unauthorized):
        await verifier_for(jwk).verify(sign(key, jwk, **overrides))


async def test_missing_required_claim_is_refused(signer: tuple[Ed25519PrivateKey, dict[str, Any]]) -> None:
    key, jwk = signer
    body = claims()
    del body["jti"]
    token = jwt.encode(body, key, algorithm="EdDSA", headers={"kid": jwk["kid"]})
    with pytest.raises(Unauthorized):
        await verifier_for(jwk).verify(token)


async def test_alg_none_is_refused(signer: tuple[Ed25519PrivateKey, dict[str, Any]]) -> None:
    _, jwk = signer
    token = jwt.encode(claims(), "", algorithm="none", headers={"kid": jwk["kid"]})
    with pytest.raises(Unauthorized):
        await verifier_for(jwk).verify(token)


async def test_hs256_signed_with_the_public_key_is_refused(
    signer: tuple[Ed25519PrivateKey, dict[str, Any]],
) -> None:
    _, jwk = signer
    header = base64.urlsafe_b64encode(b'{"alg":"HS256","typ":"JWT","kid":"' + jwk["kid"].encode() + b'"}')
    payload = base64.urlsafe_b64encode(json.dumps(claims()).encode())
    signing_input = header.rstrip(b"=") + b"." + payload.rstrip(b"=")
    mac = hmac.new(jwk["x"].encode(), signing_input, hashlib.sha256).digest()
    token = (signing_input + b"." + base64.urlsafe_b64encode(mac).rstrip(b"=")).decode()
    with pytest.raises(Unauthorized):
        await verifier_for(jwk).verify(token)


async def test_tampered_payload_is_refused(signer: tuple[Ed25519PrivateKey, dict[str, Any]]) -> None:
    key, jwk = signer
    header, _, signature = sign(key, jwk).split(".")
    forged = base64.urlsafe_b64encode(json.dumps(claims(roles=["user", "admin"])).encode())
    with pytest.raises(Unauthorized):
        await verifier_for(jwk).verify(f"{header}.{forged.decode().rstrip('=')}.{signature}")


async def test_garbage_is_refused(signer: tuple[Ed25519PrivateKey, dict[str, Any]]) -> None:
    _, jwk = signer
    for token in ("", "abc", "a.b.c", "x" * 5000):
        with pytest.raises(Unauthorized):
            await verifier_for(jwk).verify(token)


async def test_unknown_kid_refreshes_the_key_set_once() -> None:
    old_key, old_jwk = make_key()
    new_key, new_jwk = make_key()
    source = CountingSource([old_jwk])
    source.pending = [new_jwk]
    verifier = TokenVerifier(source, issuer=ISSUER, audience=AUDIENCE)
    await verifier.verify(sign(old_key, old_jwk))
    assert source.refreshes == 0
    await verifier.verify(sign(new_key, new_jwk))
    assert source.refreshes == 1


async def test_cached_token_still_expires(signer: tuple[Ed25519PrivateKey, dict[str, Any]]) -> None:
    key, jwk = signer
    clock = FakeClock(time.time())
    verifier = TokenVerifier(
        StaticKeySource({"keys": [jwk]}), issuer=ISSUER, audience=AUDIENCE, leeway=5, clock=clock
    )
    expires_at = int(clock.now) + 60
    token = sign(key, jwk, exp=expires_at)
    await verifier.verify(token)
    clock.now = expires_at + 4  # within the leeway: the cached verification still holds
    assert (await verifier.verify(token)).expires_at == expires_at
    clock.now = expires_at + 5
    with pytest.raises(Unauthorized, match="expired"):
        await verifier.verify(token)
    with pytest.raises(Unauthorized, match="expired"):  # forgotten, and checked again: still expired
        await verifier.verify(token)


async def test_the_verifier_clock_decides_for_a_token_not_seen_before(
    signer: tuple[Ed25519PrivateKey, dict[str, Any]],
) -> None:
    key, jwk = signer
    clock = FakeClock(time.time() + 3600)
    verifier = TokenVerifier(StaticKeySource({"keys": [jwk]}), issuer=ISSUER, audience=AUDIENCE, clock=clock)
    with pytest.raises(Unauthorized, match="expired"):
        await verifier.verify(sign(key, jwk))


async def test_the_key_set_is_refetched_when_its_ttl_has_passed_on_the_clock() -> None:
    _, first = make_key()
    _, second = make_key()
    served = [first]

    def jwks(request: httpx.Request) -> httpx.Response:
        return httpx.Response(200, json={"keys": served})

    clock = FakeClock(1000.0)
    async with httpx.AsyncClient(transport=httpx.MockTransport(jwks)) as client:
        source = JwksKeySource("http://users/jwks", client, ttl=300.0, min_refresh=10.0, clock=clock)
        assert set(await source.get_keys()) == {first["kid"]}
        served = [second]
        clock.now += 299
        assert set(await source.get_keys()) == {first["kid"]}
        # An unknown kid may refetch only once min_refresh has passed since the last fetch.
        assert set(await source.get_keys(refresh=True)) == {second["kid"]}
        served = [first]
        clock.now += 9
        assert set(await source.get_keys(refresh=True)) == {second["kid"]}
        clock.now += 301
        assert set(await source.get_keys()) == {first["kid"]}


def test_bearer_token_parsing() -> None:
    assert bearer_token("Bearer abc") == "abc"
    assert bearer_token("bearer  abc ") == "abc"
    assert bearer_token("Basic abc") is None
    assert bearer_token("Bearer ") is None
    assert bearer_token(None) is None


async def test_a_token_living_longer_than_the_issuer_allows_is_refused(
    signer: tuple[Ed25519PrivateKey, dict[str, Any]],
) -> None:
    key, jwk = signer
    verifier = TokenVerifier(
        StaticKeySource({"keys": [jwk]}), issuer=ISSUER, audience=AUDIENCE, access_token_ttl=900
    )
    now = int(time.time())
    await verifier.verify(sign(key, jwk, iat=now, exp=now + 960))  # the lifetime plus a minute: fine
    for exp in (now + 961, 4_102_444_800):  # a second more; the year 2100
        with pytest.raises(Unauthorized, match="longer life"):
            await verifier.verify(sign(key, jwk, iat=now, exp=exp))


class MutableSource:
    def __init__(self, *jwks: dict[str, Any]) -> None:
        self.document: dict[str, Any] = {"keys": list(jwks)}

    async def get_keys(self, *, refresh: bool = False) -> dict[str, PyJWK]:
        return parse_jwks(self.document)


async def test_a_cached_token_is_forgotten_once_its_key_leaves_the_key_set() -> None:
    old_key, old_jwk = make_key()
    _, new_jwk = make_key()
    source = MutableSource(old_jwk, new_jwk)
    verifier = TokenVerifier(source, issuer=ISSUER, audience=AUDIENCE)
    token = sign(old_key, old_jwk)
    await verifier.verify(token)
    await verifier.verify(token)  # from the cache
    source.document = {"keys": [new_jwk]}  # the old key is withdrawn
    with pytest.raises(Unauthorized, match="unknown key"):
        await verifier.verify(token)


async def test_the_jwks_refetch_is_throttled_while_the_issuer_fails() -> None:
    calls: list[str] = []
    failing = True
    _, jwk = make_key()

    def issuer(request: httpx.Request) -> httpx.Response:
        calls.append(str(request.url))
        return httpx.Response(503) if failing else httpx.Response(200, json={"keys": [jwk]})

    clock = FakeClock(1000.0)
    async with httpx.AsyncClient(transport=httpx.MockTransport(issuer)) as client:
        source = JwksKeySource(
            "http://users/jwks", client, ttl=300, min_refresh=10, max_backoff=60, clock=clock
        )
        verifier = TokenVerifier(source, issuer=ISSUER, audience=AUDIENCE)
        for _ in range(50):  # tokens naming made-up keys, each one an "unknown kid"
            stranger_key, stranger_jwk = make_key()
            with pytest.raises(Unauthorized):
                await verifier.verify(sign(stranger_key, stranger_jwk))
        assert len(calls) == 1
        clock.now += 10  # the first wait is min_refresh...
        assert await source.get_keys(refresh=True) == {}
        assert len(calls) == 2
        clock.now += 10  # ...then it doubles
        await source.get_keys(refresh=True)
        assert len(calls) == 2
        clock.now += 10
        failing = False
        assert list(await source.get_keys(refresh=True)) == [jwk["kid"]]
        assert len(calls) == 3
        clock.now += 5  # back to normal: an unknown kid waits min_refresh, a known one nothing
        await source.get_keys(refresh=True)
        await source.get_keys()
        assert len(calls) == 3
