"""bearer_token, LocalTokenVerifier and principal_from_claims."""

from __future__ import annotations

import time
from typing import Any

import jwt
import pytest

from chalicelib.auth import LocalTokenVerifier, bearer_token, mint_local_token, principal_from_claims
from chalicelib.errors import Unauthenticated

SECRET = "unit-test-secret-that-is-long-enough-for-hs256-and-hs512-0123456789"
ISSUER = "image-service-local"
AUDIENCE = "image-service"


@pytest.fixture
def verifier() -> LocalTokenVerifier:
    return LocalTokenVerifier(SECRET, ISSUER, AUDIENCE)


def token(user_id: str = "alice", **kwargs: Any) -> str:
    return mint_local_token(SECRET, user_id, issuer=ISSUER, audience=AUDIENCE, **kwargs)


def claims(**overrides: Any) -> dict[str, Any]:
    now = int(time.time())
    values: dict[str, Any] = {"sub": "alice", "iss": ISSUER, "aud": AUDIENCE, "iat": now, "exp": now + 600}
    values.update(overrides)
    return {k: v for k, v in values.items() if v is not None}


@pytest.mark.parametrize(
    ("header", "expected"),
    [
        ("Bearer abc.def.ghi", "abc.def.ghi"),
        ("bearer abc.def.ghi", "abc.def.ghi"),
        ("BEARER abc.def.ghi", "abc.def.ghi"),
        ("  Bearer   abc.def.ghi  ", "abc.def.ghi"),
    ],
)
def test_bearer_token_takes_the_token_after_the_scheme(header: str, expected: str) -> None:
    assert bearer_token(header) == expected


@pytest.mark.parametrize(
    "header",
    [
        None,
        "",
        "   ",
        "Bearer",
        "Bearer ",
        "Bearer    ",
        "Basic YWxpY2U6c2VjcmV0",
        "Token abc",
        "abc.def.ghi",
        "Bearerabc",
    ],
)
def test_bearer_token_refuses_a_missing_or_malformed_header(header: str | None) -> None:
    with pytest.raises(Unauthenticated):
        bearer_token(header)


def test_a_minted_token_gives_its_user(verifier: LocalTokenVerifier) -> None:
    principal = verifier.verify(token("alice"))

    assert principal.user_id == "alice"
    assert principal.scopes == frozenset()


def test_scopes_of_the_token_reach_the_principal(verifier: LocalTokenVerifier) -> None:
    principal = verifier.verify(token("svc", scopes=("images:import", "images:read")))

    assert principal.scopes == frozenset({"images:import", "images:read"})


def test_a_token_expired_beyond_the_leeway_is_refused(verifier: LocalTokenVerifier) -> None:
    with pytest.raises(Unauthenticated):
        verifier.verify(token(ttl_seconds=60, now=time.time() - 600))


def test_a_token_expired_within_the_clock_skew_leeway_is_accepted(verifier: LocalTokenVerifier) -> None:
    assert verifier.verify(token(ttl_seconds=60, now=time.time() - 65)).user_id == "alice"


@pytest.mark.parametrize(
    "forged",
    [
        pytest.param(jwt.encode(claims(), "another-secret-that-is-also-long-enough!!", algorithm="HS256"), id="secret"),
        pytest.param(jwt.encode(claims(aud="someone-else"), SECRET, algorithm="HS256"), id="audience"),
        pytest.param(jwt.encode(claims(aud=None), SECRET, algorithm="HS256"), id="no-audience"),
        pytest.param(jwt.encode(claims(iss="https://evil.example"), SECRET, algorithm="HS256"), id="issuer"),
        pytest.param(jwt.encode(claims(exp=None), SECRET, algorithm="HS256"), id="no-exp"),
        pytest.param(jwt.encode(claims(iat=None), SECRET, algorithm="HS256"), id="no-iat"),
        pytest.param(jwt.encode(claims(sub=None), SECRET, algorithm="HS256"), id="no-sub"),
        pytest.param(jwt.encode(claims(), SECRET, algorithm="HS512"), id="hs512"),
        pytest.param(jwt.encode(claims(), "", algorithm="none"), id="alg-none"),
        pytest.param(jwt.encode(claims(nbf=int(time.time()) + 3600), SECRET, algorithm="HS256"), id="not-yet"),
        pytest.param("not-a-jwt", id="garbage"),
        pytest.param("a.b.c", id="three-garbage-parts"),
    ],
)
def test_a_forged_or_incomplete_token_is_refused(verifier: LocalTokenVerifier, forged: str) -> None:
    with pytest.raises(Unauthenticated):
        verifier.verify(forged)


def test_a_token_with_a_tampered_subject_is_refused(verifier: LocalTokenVerifier) -> None:
    header, _payload, signature = token("alice").split(".")
    other_payload = jwt.encode(claims(sub="mallory"), SECRET, algorithm="HS256").split(".")[1]

    with pytest.raises(Unauthenticated):
        verifier.verify(f"{header}.{other_payload}.{signature}")


@pytest.mark.parametrize("subject", ["", "a/b", "x" * 129, 42, None, ["alice"]])
def test_a_subject_that_cannot_be_a_user_id_is_refused(subject: object) -> None:
    with pytest.raises(Unauthenticated):
        principal_from_claims({"sub": subject})


@pytest.mark.parametrize("subject", ["alice", "a b+c%é", "x" * 128, "user@example.com"])
def test_a_usable_subject_becomes_the_user_id(subject: str) -> None:
    assert principal_from_claims({"sub": subject}).user_id == subject


def test_scopes_that_are_not_a_string_are_ignored() -> None:
    assert principal_from_claims({"sub": "alice", "scope": ["images:import"]}).scopes == frozenset()


def test_cognito_access_tokens_are_accepted_for_the_app_client_and_listed_service_clients_only():
    from chalicelib.auth import audience_accepted

    services = frozenset({"gallery-dual-write"})
    assert audience_accepted({"token_use": "access", "client_id": "app"}, "app", services)
    assert audience_accepted({"token_use": "access", "client_id": "gallery-dual-write"}, "app", services)
    assert not audience_accepted({"token_use": "access", "client_id": "someone-else"}, "app", services)
    assert not audience_accepted({"token_use": "access", "aud": "app"}, "app", services)
    assert audience_accepted({"token_use": "id", "aud": "app"}, "app", services)
    assert audience_accepted({"aud": ["other", "app"]}, "app", services)
    # A service client id is not a valid ID-token audience.
    assert not audience_accepted({"token_use": "id", "aud": "gallery-dual-write"}, "app", services)
