"""CORS through ``chalice.test.Client``: preflights for every method of every route, and
the headers on every answer to an allowed origin, errors included (chalicelib/api/cors.py)."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from chalicelib import dependencies

GALLERY = "http://localhost:5173"  # the local stage allows loopback origins on any port
STRANGER = "https://evil.example"
EXPOSED = {"Location", "ETag", "Retry-After", "X-Request-Id"}
REQUEST_HEADERS = {"Authorization", "Content-Type", "Idempotency-Key", "If-Match"}
IMAGE_ID = "01JAAAAAAAAAAAAAAAAAAAAAAA"

# Every route of the app with its methods (the local stage also serves the demo page and the
# client module); a route added without its row here fails the test below.
ROUTES = {
    "/health": {"GET"},
    "/openapi.json": {"GET"},
    "/images": {"GET", "POST"},
    "/images/{image_id}": {"GET", "PATCH", "DELETE"},
    "/images/{image_id}/status": {"GET"},
    "/webhooks": {"GET", "POST"},
    "/webhooks/{webhook_id}": {"DELETE"},
    "/internal/images/{image_id}": {"PUT"},
    "/demo": {"GET"},
    "/client/image-service.js": {"GET"},
}


def _concrete(path: str) -> str:
    return path.replace("{image_id}", IMAGE_ID).replace("{webhook_id}", "wh-1")


def _names(header: str) -> set[str]:
    return {part.strip() for part in header.split(",") if part.strip()}


def _preflight(api: Any, path: str, origin: str, method: str) -> Any:
    return api.http.request(
        "OPTIONS",
        path,
        headers={
            "Origin": origin,
            "Access-Control-Request-Method": method,
            "Access-Control-Request-Headers": "authorization,content-type,idempotency-key,if-match",
        },
    )


def test_the_table_names_every_route_of_the_app(api: Any) -> None:
    from app import app

    routes = {path: set(views) - {"OPTIONS"} for path, views in app.routes.items()}
    assert routes == ROUTES
    assert all("OPTIONS" in views for views in app.routes.values())


@pytest.mark.parametrize(
    ("path", "method"), [(path, method) for path, methods in sorted(ROUTES.items()) for method in sorted(methods)]
)
def test_a_preflight_from_an_allowed_origin_allows_the_routes_methods_and_headers(
    api: Any, path: str, method: str
) -> None:
    response = _preflight(api, _concrete(path), GALLERY, method)

    assert response.status_code == 204
    headers = response.headers
    assert headers["Access-Control-Allow-Origin"] == GALLERY
    assert _names(headers["Access-Control-Allow-Methods"]) == ROUTES[path] | {"OPTIONS"}
    assert method in _names(headers["Access-Control-Allow-Methods"])
    assert _names(headers["Access-Control-Allow-Headers"]) == REQUEST_HEADERS
    assert headers["Access-Control-Max-Age"] == "7200"
    assert "Origin" in _names(headers["Vary"])
    assert "Access-Control-Allow-Credentials" not in headers


@pytest.mark.parametrize("origin", [STRANGER, "http://localhost.evil.example:5173", "https://localhost:5173", "null"])
def test_a_preflight_from_another_origin_gets_no_cors_headers(api: Any, origin: str) -> None:
    response = _preflight(api, "/images", origin, "POST")

    assert response.status_code == 204
    assert response.headers["Allow"] == "GET, OPTIONS, POST"
    assert not [name for name in response.headers if name.lower().startswith("access-control-")]
    assert "Origin" in _names(response.headers["Vary"])


def _assert_readable(response: Any, origin: str = GALLERY) -> None:
    assert response.headers["Access-Control-Allow-Origin"] == origin
    assert _names(response.headers["Access-Control-Expose-Headers"]) == EXPOSED
    assert "Origin" in _names(response.headers["Vary"])


def test_the_whole_flow_is_readable_from_an_allowed_origin(api: Any, auth_for: Callable[[str], dict[str, str]]) -> None:
    headers = {**auth_for("cors-alice"), "Origin": GALLERY}
    body = json.dumps({"filename": "kite.jpg", "contentType": "image/jpeg", "size": 1000})
    created = api.http.post("/images", headers={**headers, "Idempotency-Key": "cors-1"}, body=body)
    assert created.status_code == 201
    _assert_readable(created)
    image_id = json.loads(created.body)["id"]
    assert created.headers["Location"] == f"/images/{image_id}"

    fetched = api.http.get(f"/images/{image_id}", headers=headers)
    assert fetched.status_code == 200
    _assert_readable(fetched)
    assert fetched.headers["ETag"] == '"1"'

    patched = api.http.request(
        "PATCH", f"/images/{image_id}", headers={**headers, "If-Match": '"1"'}, body=json.dumps({"title": "Kite"})
    )
    assert patched.status_code == 200
    _assert_readable(patched)

    deleted = api.http.delete(f"/images/{image_id}", headers=headers)
    assert deleted.status_code == 204
    _assert_readable(deleted)


@pytest.mark.parametrize(
    ("method", "path", "authed", "headers", "body", "status", "code"),
    [
        ("GET", "/images", False, {}, None, 401, "unauthorized"),
        ("GET", f"/images/{IMAGE_ID}", True, {}, None, 404, "not_found"),
        ("POST", "/images", True, {}, "{", 400, "validation_error"),
        ("POST", "/images", True, {"Content-Type": "text/plain"}, "x", 415, "unsupported_media_type"),
        ("PUT", "/images", True, {}, None, 405, "method_not_allowed"),
        ("PATCH", f"/images/{IMAGE_ID}", True, {}, '{"title": "t"}', 404, "not_found"),
    ],
)
def test_error_answers_carry_the_cors_headers_so_the_browser_can_read_them(
    api: Any,
    auth_for: Callable[[str], dict[str, str]],
    method: str,
    path: str,
    authed: bool,
    headers: dict[str, str],
    body: str | None,
    status: int,
    code: str,
) -> None:
    sent = {"Origin": GALLERY, **(auth_for("cors-bob") if authed else {}), **headers}

    response = api.http.request(method, path, headers=sent, body=body)

    assert response.status_code == status
    assert json.loads(response.body)["error"]["code"] == code
    _assert_readable(response)


def test_answers_to_a_refused_origin_or_to_no_origin_carry_no_cors_headers(
    api: Any, auth_for: Callable[[str], dict[str, str]]
) -> None:
    for origin in ({"Origin": STRANGER}, {}):
        response = api.http.get("/images", headers={**auth_for("cors-carol"), **origin})
        assert response.status_code == 200
        assert "Access-Control-Allow-Origin" not in response.headers
        assert "Origin" in _names(response.headers["Vary"])  # the answer depends on it all the same


@pytest.fixture
def api_allowing(aws_stack: Any, tmp_path: Path) -> Iterator[Callable[[str], Any]]:
    """A test client whose stage allows the given CORS_ALLOWED_ORIGINS (the local stage's
    other values stay: the client puts its stage's variables over the environment)."""
    from chalice.test import Client

    from app import app

    def make(origins: str) -> Any:
        project = tmp_path / origins.replace("*", "star").replace(":", "_").replace("/", "_")
        (project / ".chalice").mkdir(parents=True)
        stage = {"environment_variables": {"CORS_ALLOWED_ORIGINS": origins}}
        config = {"version": "2.0", "app_name": "image-service", "stages": {"cors": stage}}
        (project / ".chalice" / "config.json").write_text(json.dumps(config))
        dependencies.reset()  # settings are read once: read them under this stage
        return Client(app, stage_name="cors", project_dir=str(project))

    yield make
    dependencies.reset()


def test_a_stage_that_allows_any_origin_answers_star_without_vary(
    api_allowing: Callable[[str], Any], auth_for: Callable[[str], dict[str, str]]
) -> None:
    api = api_allowing("*")

    preflight = _preflight(api, "/images", STRANGER, "POST")
    answer = api.http.get("/images", headers={**auth_for("cors-dave"), "Origin": STRANGER})

    assert preflight.headers["Access-Control-Allow-Origin"] == "*"
    assert _names(preflight.headers["Access-Control-Allow-Methods"]) == {"GET", "POST", "OPTIONS"}
    assert answer.status_code == 200
    assert answer.headers["Access-Control-Allow-Origin"] == "*"
    assert "Vary" not in answer.headers
    assert "Access-Control-Allow-Credentials" not in answer.headers


def test_a_stage_with_exact_origins_allows_those_only(api_allowing: Callable[[str], Any]) -> None:
    api = api_allowing("https://gallery.example.com,https://admin.example.com:8443")

    for origin in ("https://gallery.example.com", "https://admin.example.com:8443"):
        assert _preflight(api, "/images", origin, "POST").headers["Access-Control-Allow-Origin"] == origin
        refused = api.http.get("/images", headers={"Origin": origin})
        assert refused.status_code == 401
        _assert_readable(refused, origin)
    for origin in ("http://gallery.example.com", "https://admin.example.com", GALLERY):
        assert "Access-Control-Allow-Origin" not in _preflight(api, "/images", origin, "POST").headers


def test_a_stage_that_allows_no_origin_adds_no_cors_header_at_all(
    api_allowing: Callable[[str], Any], auth_for: Callable[[str], dict[str, str]]
) -> None:
    api = api_allowing("")

    preflight = _preflight(api, "/images", GALLERY, "POST")
    answer = api.http.get("/images", headers={**auth_for("cors-erin"), "Origin": GALLERY})

    assert preflight.status_code == 204
    assert answer.status_code == 200
    for response in (preflight, answer):
        assert not [name for name in response.headers if name.lower().startswith("access-control-")]
        assert "Vary" not in response.headers


def test_the_client_module_is_served_to_any_origin_as_javascript(api: Any) -> None:
    response = api.http.get("/client/image-service.js", headers={"Origin": STRANGER})

    assert response.status_code == 200
    assert response.headers["Content-Type"] == "text/javascript; charset=utf-8"
    assert response.headers["Access-Control-Allow-Origin"] == "*"
    assert b"export class ImageServiceClient" in response.body


def test_the_openapi_document_states_the_cors_rules(api: Any) -> None:
    document = json.loads(api.http.get("/openapi.json").body)

    cors = document["x-cors"]
    assert cors["allowedOrigins"] == ["http://127.0.0.1:*", "http://localhost:*", "http://[::1]:*"]
    assert set(cors["allowedRequestHeaders"]) == REQUEST_HEADERS
    assert set(cors["exposedResponseHeaders"]) == EXPOSED
    assert (cors["maxAgeSeconds"], cors["allowCredentials"]) == (7200, False)
