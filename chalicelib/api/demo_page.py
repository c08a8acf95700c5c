"""``GET /demo``: a browser upload page, and ``GET /client/image-service.js``: the browser
client module it uses (both registered in the ``local`` stage only).

The page serves no data and needs no auth: it sends the bearer token the user gives it
(``?token=`` or the text field) to the API itself, on the same origin, and uploads the
file straight to S3 with the presigned POST, through the client module. The module is
served to any origin, so a gallery page on another port can import it from the local
stack; in AWS stages the gallery ships its own copy (docs/clients.md).
"""

from __future__ import annotations

import functools
from pathlib import Path

from chalice.app import Blueprint, Response

from chalicelib.api.http import api_view

PAGE_PATH = Path(__file__).with_name("demo_page.html")
CLIENT_MODULE_PATH = Path(__file__).with_name("client") / "image-service.js"
CLIENT_MODULE_ROUTE = "/client/image-service.js"

# The inline script imports the client module from this origin; inline style; API calls
# same-origin; the upload endpoint and the renditions are on other loopback ports.
CONTENT_SECURITY_POLICY = "; ".join(
    [
        "default-src 'none'",
        "script-src 'self' 'unsafe-inline'",
        "style-src 'unsafe-inline'",
        "img-src 'self' data: http://127.0.0.1:* http://localhost:*",
        "connect-src 'self' http://127.0.0.1:* http://localhost:*",
        "base-uri 'none'",
        "form-action 'none'",
        "frame-ancestors 'none'",
    ]
)

demo_page = Blueprint(__name__)


@functools.cache
def page_html() -> str:
    """The page, read from disk once, on first request."""
    return PAGE_PATH.read_text(encoding="utf-8")


@functools.cache
def client_module() -> str:
    return CLIENT_MODULE_PATH.read_text(encoding="utf-8")


@demo_page.route("/demo", methods=["GET"])
@api_view
def demo() -> Response:
    return Response(
        body=page_html(),
        status_code=200,
        headers={
            "Content-Type": "text/html; charset=utf-8",
            "Content-Security-Policy": CONTENT_SECURITY_POLICY,
            # The token may be in the query string: keep it out of Referer headers.
            "Referrer-Policy": "no-referrer",
            "X-Content-Type-Options": "nosniff",
            "Cache-Control": "no-store",
        },
    )


@demo_page.route(CLIENT_MODULE_ROUTE, methods=["GET"])
@api_view
def client_module_source() -> Response:
    return Response(
        body=client_module(),
        status_code=200,
        headers={
            "Content-Type": "text/javascript; charset=utf-8",
            # Public code, no data: any page may import it (a module script is a CORS request).
            "Access-Control-Allow-Origin": "*",
            "X-Content-Type-Options": "nosniff",
            "Cache-Control": "no-cache",
        },
    )
