"""Nobody let in: the cross-user matrix on every endpoint, every kind of bad token on every
endpoint, the JWKS verifier against algorithm confusion, presigned POST tampering, and
error bodies that never leak internals."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import threading
import time
from collections.abc import Iterator
from datetime import datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, cast

import jwt
import pytest
from botocore.awsrequest import AWSResponse, HTTPHeaders
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa

from chalicelib import aws
from chalicelib.api.http import status_for
from chalicelib.auth import JwksTokenVerifier, LocalTokenVerifier
from chalicelib.errors import TransientFailure, Unauthenticated
from chalicelib.services.processing import Outcome
from tests.conftest import LOCAL_ENV
from tests.functional.support import create_body, decode_policy, error_of, image_bytes, image_item, s3_event_body
from tests.reliability.faults import healthy

SECRET = LOCAL_ENV["LOCAL_JWT_SECRET"]
ISSUER = LOCAL_ENV["JWT_ISSUER"]
AUDIENCE = LOCAL_ENV["JWT_AUDIENCE"]
# Words that must never reach a client: stack traces, library and AWS internals, paths.
LEAKS = (
    "Traceback",
    "botocore",
    "boto3",
    "ClientError",
    "pydantic",
    "chalicelib",
    'File "',
    "/work/",
    ".py",
    "arn:aws",
    "ProvisionedThroughput",
    "AccessDenied",
    "ConditionalCheck",
    "dynamodb",
    "DynamoDB",
    "Exception",
    "simulated",
    "123456789012",
)


def claims(**overrides: Any) -> dict[str, Any]:
    now = int(time.time())
    values: dict[str, Any] = {"sub": "alice", "iss": ISSUER, "aud": AUDIENCE, "iat": now, "exp": now + 600}
    values.update(overrides)
    return {k: v for k, v in values.items() if v is not None}


def rsa_key() -> rsa.RSAPrivateKey:
    return rsa.generate_private_key(public_exponent=65537, key_size=2048)


def public_pem(key: rsa.RSAPrivateKey) -> bytes:
    return key.public_key().public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)


def bad_tokens() -> dict[str, str]:
    """Every kind of token the local (HS256) verifier must refuse, for user alice."""
    now = int(time.time())
    other_rsa = rsa_key()
    header, payload, _ = jwt.encode(claims(), SECRET, algorithm="HS256").split(".")
    bobs_signature = jwt.encode(claims(sub="bob"), SECRET, algorithm="HS256").split(".")[2]
    return {
        "expired": jwt.encode(claims(iat=now - 7200, exp=now - 3600), SECRET, algorithm="HS256"),
        "issued in the future": jwt.encode(claims(iat=now + 3600, exp=now + 7200), SECRET, algorithm="HS256"),
        "not valid before a future time": jwt.encode(claims(nbf=now + 3600), SECRET, algorithm="HS256"),
        "wrong audience": jwt.encode(claims(aud="another-app"), SECRET, algorithm="HS256"),
        "no audience": jwt.encode(claims(aud=None), SECRET, algorithm="HS256"),
        "wrong issuer": jwt.encode(claims(iss="https://issuer.invalid"), SECRET, algorithm="HS256"),
        "no expiry": jwt.encode(claims(exp=None), SECRET, algorithm="HS256"),
        "alg none": jwt.encode(claims(), "", algorithm="none"),
        "alg none with a signature": jwt.encode(claims(), "", algorithm="none") + "c2lnbmF0dXJl",
        "wrongly signed": jwt.encode(claims(), "x" * 48 + "-not-the-stage-secret", algorithm="HS256"),
        "signature of another token": f"{header}.{payload}.{bobs_signature}",
        "RS256 to the HS256 verifier": jwt.encode(claims(), other_rsa, algorithm="RS256"),
        "HS384 with the right secret": jwt.encode(claims(), SECRET, algorithm="HS384"),
        "not a JWT": "definitely-not-a-token",
    }


@pytest.fixture
def alice_world(api, aws_stack, auth_for, uploader) -> dict[str, Any]:
    """Alice's completed image in an album, and her webhook."""
    data = image_bytes(64, 48)
    image_id, _ = uploader.process(data, "alice", albumId="castles", title="mine")
    assert uploader.status(image_id)["status"] == "completed"
    webhook = api.http.post("/webhooks", headers=auth_for("alice"), body=json.dumps({"url": "http://127.0.0.1:9/h"}))
    assert webhook.status_code == 201, webhook.body
    return {"image_id": image_id, "webhook_id": webhook.json_body["id"]}


def every_endpoint(image_id: str, webhook_id: str) -> list[tuple[str, str, str | None]]:
    patch = json.dumps({"title": "pwned", "version": 1})
    return [
        ("GET", f"/images/{image_id}", None),
        ("GET", f"/images/{image_id}/status", None),
        ("PATCH", f"/images/{image_id}", patch),
        ("DELETE", f"/images/{image_id}", None),
        ("GET", "/images", None),
        ("GET", "/images?albumId=castles", None),
        ("POST", "/images", json.dumps(create_body())),
        ("POST", "/webhooks", json.dumps({"url": "http://127.0.0.1:9/h"})),
        ("GET", "/webhooks", None),
        ("DELETE", f"/webhooks/{webhook_id}", None),
    ]


def call(api: Any, method: str, path: str, headers: dict[str, str], body: str | None = None) -> Any:
    headers = {"Content-Type": "application/json", **headers}
    return getattr(api.http, method.lower())(path, headers=headers, **({"body": body} if body is not None else {}))


def assert_no_leak(response: Any) -> None:
    text = response.body.decode(errors="replace") if isinstance(response.body, bytes) else str(response.body)
    leaked = [word for word in LEAKS if word in text]
    assert not leaked, (response.status_code, leaked, text)


def assert_alice_untouched(api: Any, aws_stack: Any, auth_for: Any, world: dict[str, Any]) -> None:
    image = api.http.get(f"/images/{world['image_id']}", headers=auth_for("alice"))
    assert image.status_code == 200
    assert image.json_body["title"] == "mine"
    assert image.json_body["version"] == 1
    hooks = api.http.get("/webhooks", headers=auth_for("alice")).json_body
    listed = hooks["webhooks"] if isinstance(hooks, dict) else hooks
    assert [h["id"] for h in listed] == [world["webhook_id"]]
    item = image_item(aws_stack, world["image_id"])
    assert item is not None and "deletedAt" not in item
    for key in (f"uploads/alice/{world['image_id']}",):
        assert aws_stack.s3.head_object(Bucket=aws_stack.upload_bucket, Key=key)["ContentLength"] > 0


# -- the cross-user matrix ------------------------------------------------------------


def test_another_user_gets_403_on_every_image_and_webhook_of_alice_and_changes_nothing(
    api, aws_stack, auth_for, alice_world
):
    image_id, webhook_id = alice_world["image_id"], alice_world["webhook_id"]
    mallory = auth_for("mallory")
    for method, path, body in [
        ("GET", f"/images/{image_id}", None),
        ("GET", f"/images/{image_id}/status", None),
        ("PATCH", f"/images/{image_id}", json.dumps({"title": "pwned", "version": 1})),
        ("PATCH", f"/images/{image_id}", json.dumps({"title": "pwned", "version": 99})),
        ("DELETE", f"/images/{image_id}", None),
        ("DELETE", f"/webhooks/{webhook_id}", None),
    ]:
        response = call(api, method, path, mallory, body)
        error_of(response, 403, "forbidden")
        assert "alice" not in response.body.decode(), (method, path)
    assert_alice_untouched(api, aws_stack, auth_for, alice_world)


def test_another_users_listings_never_show_alices_images_or_webhooks(api, aws_stack, auth_for, alice_world, uploader):
    uploader.create("mallory", albumId="castles")  # the same album id, chosen by mallory
    mallory = auth_for("mallory")

    everything = api.http.get("/images?limit=100", headers=mallory).json_body["images"]
    album = api.http.get("/images?albumId=castles", headers=mallory).json_body["images"]
    hooks = api.http.get("/webhooks", headers=mallory).json_body
    listed_hooks = hooks["webhooks"] if isinstance(hooks, dict) else hooks

    assert len(everything) == 1 and everything[0]["userId"] == "mallory"
    assert [i["userId"] for i in album] == ["mallory"]
    assert alice_world["webhook_id"] not in [h["id"] for h in listed_hooks]


def test_paging_through_a_shared_album_id_never_reveals_another_users_images(api, aws_stack, auth_for, uploader):
    """Album ids are the gallery's, not secrets: a cursor must not point at (and so name)
    an image of another user who happens to use the same album id."""
    alice_ids = {uploader.create("alice", albumId="shared")["id"] for _ in range(2)}
    mallory_ids = {uploader.create("mallory", albumId="shared")["id"] for _ in range(3)}
    mallory = auth_for("mallory")

    seen, cursors, pages = set(), [], 0
    query = "/images?albumId=shared&limit=1"
    while True:
        page = api.http.get(query, headers=mallory).json_body
        pages += 1
        assert len(page["images"]) == 1 or (page["images"] == [] and page["nextCursor"] is None)
        seen |= {image["id"] for image in page["images"]}
        if page["nextCursor"] is None:
            break
        cursors.append(page["nextCursor"])
        query = f"/images?albumId=shared&limit=1&cursor={page['nextCursor']}"
        assert pages < 10

    assert seen == mallory_ids
    decoded = "".join(base64.urlsafe_b64decode(c.split(".")[0] + "==").decode() for c in cursors)
    assert not any(image_id in decoded for image_id in alice_ids)
    assert "alice" not in decoded


def test_alices_listing_cursor_is_refused_to_another_user(api, auth_for, uploader):
    for _ in range(3):
        uploader.create("alice")
    cursor = api.http.get("/images?limit=1", headers=auth_for("alice")).json_body["nextCursor"]
    assert cursor

    error_of(api.http.get(f"/images?limit=1&cursor={cursor}", headers=auth_for("mallory")), 400, "invalid_cursor")


def test_a_deleted_or_unknown_image_is_404_for_everyone_and_reveals_no_owner(api, auth_for, uploader):
    image_id = uploader.create("alice")["id"]
    assert api.http.delete(f"/images/{image_id}", headers=auth_for("alice")).status_code == 204
    for user in ("alice", "mallory"):
        for method, path in (("GET", f"/images/{image_id}"), ("DELETE", f"/images/{image_id}")):
            error_of(call(api, method, path, auth_for(user)), 404, "not_found")


# -- bad tokens on every endpoint -------------------------------------------------------


def test_every_bad_token_is_401_on_every_endpoint_and_changes_nothing(api, aws_stack, auth_for, alice_world):
    endpoints = every_endpoint(alice_world["image_id"], alice_world["webhook_id"])
    for case, token in bad_tokens().items():
        for method, path, body in endpoints:
            response = call(api, method, path, {"Authorization": f"Bearer {token}"}, body)
            assert response.status_code == 401, (case, method, path, response.status_code, response.body)
            error_of(response, 401, "unauthorized")
    assert_alice_untouched(api, aws_stack, auth_for, alice_world)


@pytest.mark.parametrize("case", list(bad_tokens()))
def test_the_local_verifier_refuses_each_bad_token(case):
    verifier = LocalTokenVerifier(SECRET, ISSUER, AUDIENCE)
    with pytest.raises(Unauthenticated):
        verifier.verify(bad_tokens()[case])


def test_a_token_within_the_clock_skew_leeway_is_accepted_but_not_beyond_it():
    verifier = LocalTokenVerifier(SECRET, ISSUER, AUDIENCE)
    now = int(time.time())
    assert verifier.verify(jwt.encode(claims(iat=now + 10, exp=now + 600), SECRET)).user_id == "alice"
    with pytest.raises(Unauthenticated):
        verifier.verify(jwt.encode(claims(iat=now + 120, exp=now + 600), SECRET))


# -- the JWKS (RS256) verifier ----------------------------------------------------------


@pytest.fixture(scope="module")
def signing_key() -> rsa.RSAPrivateKey:
    return rsa_key()


@pytest.fixture(scope="module")
def jwks_url(signing_key) -> Iterator[str]:
    """A JWKS endpoint on 127.0.0.1 serving the test's public key (kid "k1")."""
    jwk = json.loads(jwt.algorithms.RSAAlgorithm.to_jwk(signing_key.public_key()))
    body = json.dumps({"keys": [{**jwk, "kid": "k1", "alg": "RS256", "use": "sig"}]}).encode()

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, format: str, *args: Any) -> None:
            return

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}/.well-known/jwks.json"
    finally:
        server.shutdown()
        server.server_close()


def rs256(key: Any, kid: str = "k1", **overrides: Any) -> str:
    return jwt.encode(claims(**overrides), key, algorithm="RS256", headers={"kid": kid})


def test_the_jwks_verifier_accepts_a_good_id_token_and_an_access_token_for_its_client(jwks_url, signing_key):
    verifier = JwksTokenVerifier(jwks_url, ISSUER, AUDIENCE)

    assert verifier.verify(rs256(signing_key)).user_id == "alice"
    access = rs256(signing_key, aud=None, token_use="access", client_id=AUDIENCE, scope="images:read")
    assert verifier.verify(access).scopes == frozenset({"images:read"})


def jwks_bad_tokens(signing_key: rsa.RSAPrivateKey) -> dict[str, str]:
    now = int(time.time())
    pem = public_pem(signing_key)

    # Algorithm confusion: HS256 "signed" with the RSA public key as the HMAC secret.
    # PyJWT refuses to encode with a PEM as an HMAC key, so the token is built by hand.
    def b64(data: bytes) -> str:
        return base64.urlsafe_b64encode(data).rstrip(b"=").decode()

    signing_input = (
        b64(json.dumps({"alg": "HS256", "typ": "JWT", "kid": "k1"}).encode()) + "." + b64(json.dumps(claims()).encode())
    )
    confused = signing_input + "." + b64(hmac.new(pem, signing_input.encode(), hashlib.sha256).digest())
    return {
        "HS256 signed with the public key": confused,
        "HS256 with the local secret": jwt.encode(claims(), SECRET, algorithm="HS256", headers={"kid": "k1"}),
        "alg none": jwt.encode(claims(), "", algorithm="none", headers={"kid": "k1"}),
        "signed by another key under the same kid": rs256(rsa_key()),
        "unknown kid": rs256(signing_key, kid="k2"),
        "expired": rs256(signing_key, iat=now - 7200, exp=now - 3600),
        "issued in the future": rs256(signing_key, iat=now + 3600, exp=now + 7200),
        "not valid before a future time": rs256(signing_key, nbf=now + 3600),
        "wrong issuer": rs256(signing_key, iss="https://issuer.invalid"),
        "wrong audience": rs256(signing_key, aud="another-app"),
        "access token of another client": rs256(signing_key, aud=None, token_use="access", client_id="another"),
        "access token naming the audience only in aud": rs256(signing_key, token_use="access"),
        "no subject": rs256(signing_key, sub=None),
    }


def test_the_jwks_verifier_refuses_algorithm_confusion_and_every_bad_token(jwks_url, signing_key):
    verifier = JwksTokenVerifier(jwks_url, ISSUER, AUDIENCE)
    accepted = []
    for case, token in jwks_bad_tokens(signing_key).items():
        try:
            verifier.verify(token)
        except Unauthenticated:
            continue
        accepted.append(case)
    assert accepted == []


def test_an_unreachable_key_set_is_a_503_to_retry_not_a_401_that_ends_the_session(signing_key):
    with ThreadingHTTPServer(("127.0.0.1", 0), BaseHTTPRequestHandler) as closed:
        gone = f"http://127.0.0.1:{closed.server_address[1]}/.well-known/jwks.json"
    verifier = JwksTokenVerifier(gone, ISSUER, AUDIENCE)  # nothing listens there any more

    with pytest.raises(TransientFailure) as raised:
        verifier.verify(rs256(signing_key))
    assert status_for(raised.value) == 503


def test_made_up_key_ids_do_not_each_fetch_the_key_set(jwks_url, signing_key, monkeypatch):
    verifier = JwksTokenVerifier(jwks_url, ISSUER, AUDIENCE)
    assert verifier.verify(rs256(signing_key)).user_id == "alice"  # the set is cached now
    fetches = []
    original = jwt.PyJWKClient.fetch_data

    def counted(self: jwt.PyJWKClient) -> Any:
        fetches.append(self)
        return original(self)

    monkeypatch.setattr(jwt.PyJWKClient, "fetch_data", counted)

    for attempt in range(20):
        with pytest.raises(Unauthenticated):
            verifier.verify(rs256(signing_key, kid=f"made-up-{attempt}"))

    assert len(fetches) <= 1


# -- presigned POST tampering -----------------------------------------------------------


def test_the_presigned_post_policy_pins_the_key_the_content_type_and_the_size(api, auth_for):
    response = api.http.post("/images", headers=auth_for("alice"), body=json.dumps(create_body(size=12345)))
    created = response.json_body
    fields = created["upload"]["fields"]
    policy = decode_policy(fields["policy"])
    conditions = policy["conditions"]

    assert {"key": f"uploads/alice/{created['id']}"} in conditions
    assert {"Content-Type": "image/jpeg"} in conditions
    assert ["content-length-range", 1, 12345] in conditions
    assert any(isinstance(c, dict) and "bucket" in c for c in conditions)
    # No wildcard condition lets the browser choose another key or type.
    assert not any(isinstance(c, list) and c[0] == "starts-with" for c in conditions)
    assert fields["key"] == f"uploads/alice/{created['id']}"
    expiration = datetime.fromisoformat(policy["expiration"].replace("Z", "+00:00"))
    expires_at = datetime.fromisoformat(created["upload"]["expiresAt"].replace("Z", "+00:00"))
    assert abs((expiration - expires_at).total_seconds()) < 2, (expiration, expires_at)


def test_more_bytes_than_declared_are_caught_by_the_processor_as_size_mismatch(uploader, aws_stack, sns_events):
    data = image_bytes(64, 48)
    created = uploader.create("alice", size=len(data) - 1)
    bodies = uploader.put(created, data)  # S3 would refuse this POST; moto does not enforce policies

    assert healthy(aws_stack).handle_message(bodies[0]) == [Outcome.FAILED]
    status = uploader.status(created["id"])
    assert status["status"] == "failed"
    assert status["error"]["code"] == "size_mismatch"
    assert [e.body["type"] for e in sns_events.drain()] == ["image.failed"]


def test_an_upload_to_another_users_prefix_or_an_unknown_key_is_ignored(uploader, aws_stack, sns_events):
    data = image_bytes(64, 48)
    alices = uploader.create("alice", size=len(data))["id"]
    service = healthy(aws_stack)
    outcomes = []
    for key in (
        f"uploads/mallory/{alices}",  # alice's image id under mallory's prefix
        "uploads/alice/01J00000000000000000000099",  # a well-formed id no record has
        f"uploads/alice/{alices}/extra",  # a longer key
        f"images/alice/{alices}.webp",  # not an upload at all
    ):
        aws_stack.s3.put_object(Bucket=aws_stack.upload_bucket, Key=key, Body=data)
        outcomes += service.handle_message(s3_event_body(aws_stack.upload_bucket, key, len(data)))

    assert outcomes == [Outcome.IGNORED] * 4
    assert uploader.status(alices, "alice")["status"] == "pending"
    assert sns_events.drain() == []


def test_a_notification_naming_another_bucket_is_ignored(uploader, aws_stack, sns_events):
    data = image_bytes(64, 48)
    created = uploader.create("alice", size=len(data))
    key = created["upload"]["fields"]["key"]
    aws_stack.s3.put_object(Bucket=aws_stack.upload_bucket, Key=key, Body=data)

    assert healthy(aws_stack).handle_message(s3_event_body("someone-elses-bucket", key, len(data))) == [Outcome.IGNORED]
    assert uploader.status(created["id"])["status"] == "pending"


# -- error bodies never leak internals --------------------------------------------------

BAD_REQUESTS: list[tuple[str, str, str | None]] = [
    ("POST", "/images", "{not json"),
    ("POST", "/images", "[1, 2, 3]"),
    ("POST", "/images", '"a string"'),
    ("POST", "/images", json.dumps(create_body(size="big"))),
    ("POST", "/images", json.dumps(create_body(size=10**12))),
    ("POST", "/images", json.dumps(create_body(size=-1))),
    ("POST", "/images", json.dumps(create_body(contentType="application/x-msdownload"))),
    ("POST", "/images", json.dumps(create_body(title="t" * 5000, tags=["x" * 500] * 50))),
    ("POST", "/images", json.dumps(create_body(filename=None, extra={"__class__": "x"}))),
    ("POST", "/images", json.dumps(create_body(albumId="../../etc/passwd\x00"))),
    ("POST", "/images", "\x00\xff\xfe"),
    ("GET", "/images?limit=abc", None),
    ("GET", "/images?limit=100000", None),
    ("GET", "/images?cursor=eyJhIjoxfQ", None),
    ("GET", "/images?cursor=%00%01", None),
    ("GET", "/images/..%2F..%2Fetc%2Fpasswd", None),
    ("GET", "/images/01JD3ZK4Q8N6W2T1R5Y7B9C0DE", None),
    ("GET", "/images/' OR 1=1 --/status", None),
    ("PATCH", "/images/01JD3ZK4Q8N6W2T1R5Y7B9C0DE", json.dumps({"title": "x"})),
    ("PATCH", "/images/01JD3ZK4Q8N6W2T1R5Y7B9C0DE", json.dumps({"title": "x", "version": "one"})),
    ("PATCH", "/images/01JD3ZK4Q8N6W2T1R5Y7B9C0DE", "{"),
    ("DELETE", "/images/%ff%fe", None),
    ("POST", "/webhooks", json.dumps({"url": "file:///etc/passwd"})),
    ("POST", "/webhooks", json.dumps({"url": "http://169.254.169.254/latest/meta-data"})),
    ("POST", "/webhooks", "{"),
    ("DELETE", "/webhooks/nope", None),
]


def test_no_bad_input_gets_an_error_body_that_leaks_internals(api, auth_for):
    headers = auth_for("alice")
    for method, path, body in BAD_REQUESTS:
        response = call(api, method, path, headers, body)
        assert 400 <= response.status_code < 500, (method, path, response.status_code, response.body)
        assert_no_leak(response)
        error = response.json_body["error"]
        assert set(error) <= {"code", "message", "requestId", "details"}, (method, path, error)


class FailingAws:
    """A botocore ``before-call`` hook answering every call with an AWS error (no request made)."""

    def __init__(self, code: str, status: int) -> None:
        self.code, self.status = code, status

    def __call__(self, **_: Any) -> tuple[AWSResponse, dict[str, Any]]:
        message = (
            f"{self.code}: User: arn:aws:sts::123456789012:assumed-role/image-service/fn is not authorized "
            "on arn:aws:dynamodb:us-east-1:123456789012:table/images (simulated)"
        )
        parsed = {"Error": {"Code": self.code, "Message": message}, "ResponseMetadata": {"HTTPStatusCode": self.status}}
        return AWSResponse("https://aws.invalid", self.status, HTTPHeaders(), None), parsed


@pytest.mark.parametrize(
    ("code", "status", "expected"),
    [
        ("ProvisionedThroughputExceededException", 400, 503),
        ("InternalServerError", 500, 503),
        ("AccessDeniedException", 400, 500),
        ("ValidationException", 400, 500),
    ],
)
def test_an_aws_failure_behind_the_api_is_answered_without_aws_text(api, auth_for, code, status, expected):
    image_id = api.http.post("/images", headers=auth_for("alice"), body=json.dumps(create_body())).json_body["id"]
    hook = FailingAws(code, status)
    client = aws.dynamodb()
    client.meta.events.register_first("before-call.dynamodb", cast(Any, hook))
    try:
        responses = [
            call(api, "GET", f"/images/{image_id}", auth_for("alice")),
            call(api, "GET", "/images", auth_for("alice")),
            call(api, "POST", "/images", auth_for("alice"), json.dumps(create_body())),
            call(api, "PATCH", f"/images/{image_id}", auth_for("alice"), json.dumps({"title": "x", "version": 1})),
        ]
    finally:
        client.meta.events.unregister("before-call.dynamodb", cast(Any, hook))
    for response in responses:
        assert response.status_code == expected, (code, response.status_code, response.body)
        assert_no_leak(response)
        assert response.json_body["error"]["code"] in ("service_unavailable", "internal_error")
