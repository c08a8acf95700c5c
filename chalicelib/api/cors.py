"""CORS: the gallery's web app, on its own origin, calls the API from the browser.

Chalice's ``cors=`` cannot do this: its ``CORSConfig`` has one static origin, and API
Gateway answers its preflights with a MOCK integration that never sees the request. The
stages allow a list of origins (``CORS_ALLOWED_ORIGINS``), so the answer must echo the
caller's ``Origin`` when the list holds it. Hence:

- ``install`` adds an ``OPTIONS`` route to every path of the app, answered by the Lambda
  with the path's own methods (a preflight costs an invocation; ``Access-Control-Max-Age``
  lets the browser reuse it for 2 hours, Chromium's ceiling);
- an HTTP middleware puts ``Access-Control-Allow-Origin`` (and the exposed headers) on
  every answer of the app to an allowed origin, errors included, with ``Vary: Origin``.

Never ``Access-Control-Allow-Credentials``: the API reads a bearer token from the
``Authorization`` header, never a cookie, so no answer is readable thanks to ambient
credentials and ``*`` is safe where a stage asks for it. API Gateway's own answers (an
unknown route, throttling, a crashed Lambda) never reach this code: see
``scripts/gateway_responses.py``.
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any

from chalice.app import Request, Response

from chalicelib.settings import get_settings

# The request headers the API reads (besides the CORS-safelisted ones).
ALLOWED_REQUEST_HEADERS = ("Authorization", "Content-Type", "Idempotency-Key", "If-Match")
# The response headers a client needs besides the safelisted ones (Content-Type, Cache-Control...).
EXPOSED_HEADERS = ("Location", "ETag", "Retry-After", "X-Request-Id")
# Chromium caps a preflight's cache at 2 hours (Firefox at 24): ask for the most it keeps.
MAX_AGE_SECONDS = 7200
ANY_ORIGIN = "*"
ANY_PORT = ":*"


@dataclass(frozen=True)
class OriginPolicy:
    """Which browser origins may read the API's answers (``CORS_ALLOWED_ORIGINS``)."""

    any_origin: bool
    exact: frozenset[str]
    # "http://localhost" for "http://localhost:*": that scheme and host on any port.
    any_port: tuple[str, ...]

    @classmethod
    def of(cls, origins: Iterable[str]) -> OriginPolicy:
        entries = tuple(origins)
        return cls(
            any_origin=ANY_ORIGIN in entries,
            exact=frozenset(o for o in entries if o != ANY_ORIGIN and not o.endswith(ANY_PORT)),
            any_port=tuple(o.removesuffix(ANY_PORT) for o in entries if o.endswith(ANY_PORT)),
        )

    @property
    def allows_cross_origin(self) -> bool:
        """Whether any page on another origin may call the API."""
        return self.any_origin or bool(self.exact) or bool(self.any_port)

    def allows(self, origin: str) -> bool:
        if self.any_origin or origin in self.exact:
            return True
        for base in self.any_port:
            port = origin.removeprefix(base + ":") if origin.startswith(base + ":") else ""
            if port.isdigit() and 0 < int(port) < 65536:
                return True
        # A page on the scheme's default port sends no port at all.
        return origin in self.any_port

    def allow_origin_header(self, origin: str | None) -> str | None:
        """The ``Access-Control-Allow-Origin`` value for a request from ``origin``; None: refused."""
        if self.any_origin:
            return ANY_ORIGIN
        if origin and self.allows(origin):
            return origin
        return None


@functools.cache
def _policy_of(origins: tuple[str, ...]) -> OriginPolicy:
    return OriginPolicy.of(origins)


def current_policy() -> OriginPolicy:
    """The stage's policy (settings are read once; the parse is cached per value)."""
    return _policy_of(get_settings().cors_allowed_origins)


def _has_header(headers: dict[str, Any], name: str) -> bool:
    return any(key.lower() == name.lower() for key in headers)


def _add_vary(headers: dict[str, Any], value: str) -> None:
    key = next((k for k in headers if k.lower() == "vary"), "Vary")
    present = [part.strip() for part in str(headers.get(key, "")).split(",") if part.strip()]
    if value.lower() not in (part.lower() for part in present):
        headers[key] = ", ".join([*present, value])


def add_cors_headers(request: Request, get_response: Callable[[Request], Response]) -> Response:
    """HTTP middleware: CORS headers on every answer of the app to an allowed origin,
    errors and preflights included."""
    response = get_response(request)
    policy = current_policy()
    if not policy.allows_cross_origin:
        return response
    headers = response.headers
    if not policy.any_origin:
        # The answer depends on the Origin header: caches must keep one per origin.
        _add_vary(headers, "Origin")
    allowed = policy.allow_origin_header(request.headers.get("origin"))
    # A refused origin gets no CORS headers at all, so the browser withholds the answer.
    if allowed is None or _has_header(headers, "Access-Control-Allow-Origin"):
        return response  # (a route that sets its own, the public client module's "*", keeps it)
    headers["Access-Control-Allow-Origin"] = allowed
    headers["Access-Control-Expose-Headers"] = ", ".join(EXPOSED_HEADERS)
    if request.method == "OPTIONS" and response.status_code == 204 and "Allow" in headers:
        # A preflight (every OPTIONS route is one of ``preflight``'s views).
        headers["Access-Control-Allow-Methods"] = headers["Allow"]
        headers["Access-Control-Allow-Headers"] = ", ".join(ALLOWED_REQUEST_HEADERS)
        headers["Access-Control-Max-Age"] = str(MAX_AGE_SECONDS)
    return response


def preflight(methods: Iterable[str]) -> Callable[..., Response]:
    """The ``OPTIONS`` view of one path: 204 with its methods in ``Allow``; the middleware
    turns it into a preflight answer for an allowed origin."""
    allowed_methods = ", ".join(sorted({*methods, "OPTIONS"}))

    def answer(**_path_parameters: str) -> Response:
        return Response(body="", status_code=204, headers={"Allow": allowed_methods})

    return answer


def install(app: Any) -> None:
    """An ``OPTIONS`` route on every path the app has so far, and the middleware.

    Call it after every blueprint is registered: a path added later has no preflight.
    """
    for path, views in sorted(app.routes.items()):
        if "OPTIONS" in views:
            continue
        name = "preflight_" + "".join(c if c.isalnum() else "_" for c in path).strip("_")
        app.route(path, methods=["OPTIONS"], name=name)(preflight(views))
    app.register_middleware(add_cors_headers, "http")
