"""Bearer token verification.

``local`` stage: HS256 tokens signed with the stage's local secret (``scripts/mint_token.py``
mints them). AWS stages: RS256 tokens from the Cognito user pool, verified against its
JWKS with issuer and audience checks (ID tokens carry ``aud``; access tokens carry
``client_id``, which must then equal the audience).
"""

from __future__ import annotations

import time
from typing import Any, NamedTuple, Protocol

from chalicelib.errors import TransientFailure, Unauthenticated
from chalicelib.models.user_ids import USER_ID_RULE, user_id_problem

# PyJWT is imported where a token is verified or minted, not with this module: it imports
# cryptography (~18 ms), which only the API function needs, and only once a request comes
# (every Lambda function imports the whole app). chalicelib.coldstart.prewarm imports it
# during init when init runs ahead of traffic.

_LEEWAY_SECONDS = 30


class Principal(NamedTuple):
    user_id: str
    scopes: frozenset[str] = frozenset()


class TokenVerifier(Protocol):
    def verify(self, token: str) -> Principal: ...


def principal_from_claims(claims: dict[str, Any]) -> Principal:
    subject = claims.get("sub")
    if not isinstance(subject, str):
        raise Unauthenticated("The token has no usable subject (sub).")
    problem = user_id_problem(subject)
    if problem is not None:
        # The subject becomes object keys and URLs (chalicelib.models.user_ids): say why
        # it cannot, so whoever issued the token can tell this from a bad signature.
        raise Unauthenticated(f"The token's subject (sub) cannot be a user id: it {problem} ({USER_ID_RULE}).")
    raw_scopes = claims.get("scope", "")
    scopes = frozenset(raw_scopes.split()) if isinstance(raw_scopes, str) else frozenset()
    return Principal(user_id=subject, scopes=scopes)


class LocalTokenVerifier:
    def __init__(self, secret: str, issuer: str, audience: str) -> None:
        self._secret = secret
        self._issuer = issuer
        self._audience = audience

    def verify(self, token: str) -> Principal:
        import jwt

        try:
            claims = jwt.decode(
                token,
                self._secret,
                algorithms=["HS256"],
                audience=self._audience,
                issuer=self._issuer,
                leeway=_LEEWAY_SECONDS,
                options={"require": ["exp", "iat", "sub"]},
            )
        except jwt.InvalidTokenError as exc:
            raise Unauthenticated() from exc
        return principal_from_claims(claims)


class JwksTokenVerifier:
    def __init__(
        self, jwks_url: str, issuer: str, audience: str, service_clients: frozenset[str] = frozenset()
    ) -> None:
        import jwt

        # PyJWKClient caches the key set, and refetches it for an unknown key id at most
        # once per cooldown (30 s): a stream of made-up key ids costs no stream of fetches.
        self._jwks = jwt.PyJWKClient(jwks_url, cache_keys=True, lifespan=3600, timeout=5)
        self._issuer = issuer
        self._audience = audience
        self._service_clients = service_clients

    def verify(self, token: str) -> Principal:
        import jwt

        try:
            signing_key = self._jwks.get_signing_key_from_jwt(token)
            claims = jwt.decode(
                token,
                signing_key.key,
                algorithms=["RS256"],
                issuer=self._issuer,
                leeway=_LEEWAY_SECONDS,
                options={"require": ["exp", "iat", "sub"], "verify_aud": False},
            )
        except jwt.PyJWKClientConnectionError as exc:
            # The key set could not be fetched: the token may be fine. A 401 would make
            # clients drop a good session; a 503 makes them retry.
            raise TransientFailure("The sign-in service could not be reached; retry shortly.") from exc
        except (jwt.InvalidTokenError, jwt.PyJWKClientError) as exc:
            raise Unauthenticated() from exc
        if not audience_accepted(claims, self._audience, self._service_clients):
            raise Unauthenticated()
        return principal_from_claims(claims)


def audience_accepted(claims: dict[str, Any], audience: str, service_clients: frozenset[str]) -> bool:
    """Cognito ID tokens name the app client in ``aud``; access tokens in ``client_id``,
    which may also be a service's client (client-credentials, e.g. the dual-write)."""
    if claims.get("token_use") == "access":
        return claims.get("client_id") in service_clients | {audience}
    audiences = claims.get("aud")
    return audience in (audiences if isinstance(audiences, list) else [audiences])


def mint_local_token(
    secret: str,
    user_id: str,
    *,
    issuer: str,
    audience: str,
    ttl_seconds: int = 3600,
    scopes: tuple[str, ...] = (),
    now: float | None = None,
) -> str:
    """An HS256 token the ``local`` stage accepts (development and tests only)."""
    import jwt

    issued = int(now if now is not None else time.time())
    claims: dict[str, Any] = {
        "sub": user_id,
        "iss": issuer,
        "aud": audience,
        "iat": issued,
        "exp": issued + ttl_seconds,
    }
    if scopes:
        claims["scope"] = " ".join(scopes)
    return jwt.encode(claims, secret, algorithm="HS256")


def bearer_token(authorization: str | None) -> str:
    if not authorization:
        raise Unauthenticated("Missing Authorization header. Send 'Authorization: Bearer <token>'.")
    scheme, _, token = authorization.strip().partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        raise Unauthenticated("The Authorization header must be 'Bearer <token>'.")
    return token.strip()
