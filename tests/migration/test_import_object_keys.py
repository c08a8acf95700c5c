"""The object keys an import may name: only keys the API role may delete again.

A migrated image's ``DELETE`` removes the objects at its legacy keys, and the API role
may delete only ``images/*`` in the image bucket (``scripts/iam_policies.py``). A key
elsewhere would make that delete fail in AWS (DeleteObjects reports the key as
AccessDenied, the API answers 503 and the image can never be deleted), so the import
refuses it.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from chalicelib import aws
from infra import iam_policies
from infra.stage_config import stage_environment
from tests.functional.conftest import Stack
from tests.functional.test_iam_policies import _allows
from tests.migration.test_import_endpoint import legacy_body, put, user_headers

CANDIDATE_KEYS = [
    "images/alice/castle.jpg",
    "images/alice/thumbs/castle.jpg",
    "legacy/alice/castle.jpg",
    "gallery/images/alice/castle.jpg",
    "castle.jpg",
    "images",
    "images/",
    "Images/alice/castle.jpg",
    "images/../uploads/alice/castle.jpg",
    "images/alice/./castle.jpg",
    "images/alice/..",
]


@contextmanager
def deleted_objects() -> Iterator[list[tuple[str, str]]]:
    """(bucket, key) of every object the code asks S3 to delete meanwhile."""
    deleted: list[tuple[str, str]] = []

    def one(params: dict[str, Any], **_: Any) -> None:
        deleted.append((params["Bucket"], params["Key"]))

    def many(params: dict[str, Any], **_: Any) -> None:
        deleted.extend((params["Bucket"], entry["Key"]) for entry in params["Delete"]["Objects"])

    events = aws.s3().meta.events
    events.register("before-parameter-build.s3.DeleteObject", one)
    events.register("before-parameter-build.s3.DeleteObjects", many)
    try:
        yield deleted
    finally:
        events.unregister("before-parameter-build.s3.DeleteObject", one)
        events.unregister("before-parameter-build.s3.DeleteObjects", many)


def test_every_object_key_an_import_accepts_is_one_the_api_role_may_delete(api: Any, aws_stack: Stack) -> None:
    documents = {stage: iam_policies.policy_documents(stage)[f"policy-{stage}.json"] for stage in ("dev", "prod")}
    accepted = []
    for key in CANDIDATE_KEYS:
        for body in (legacy_body(imageKey=key), legacy_body(thumbnailKey=key)):
            image_id = str(uuid.uuid4())
            response = put(api, image_id, body)
            assert response.status_code in (201, 400), (key, response.body)
            if response.status_code == 400:
                continue
            accepted.append(key)
            with deleted_objects() as deleted:
                assert api.http.delete(f"/images/{image_id}", headers=user_headers("alice")).status_code == 204
            assert (aws_stack.image_bucket, key) in deleted
            for stage, document in documents.items():
                buckets = {
                    aws_stack.upload_bucket: stage_environment(stage)["UPLOAD_BUCKET"],
                    aws_stack.image_bucket: stage_environment(stage)["IMAGE_BUCKET"],
                }
                for bucket, deleted_key in deleted:
                    arn = f"arn:aws:s3:::{buckets[bucket]}/{deleted_key}"
                    assert _allows(document, "s3:DeleteObject", arn, {}), (stage, key, deleted_key)
    assert set(accepted) == {"images/alice/castle.jpg", "images/alice/thumbs/castle.jpg"}


def test_a_key_outside_the_image_prefix_is_refused_with_400_naming_the_field(api: Any) -> None:
    for field in ("imageKey", "thumbnailKey"):
        response = put(api, str(uuid.uuid4()), legacy_body(**{field: "legacy/alice/castle.jpg"}))

        assert response.status_code == 400, field
        error = json.loads(response.body)["error"]
        assert error["code"] == "validation_error"
        assert [(d["field"], "images/" in d["message"]) for d in error["details"]] == [(field, True)]

    both = put(api, str(uuid.uuid4()), legacy_body(imageKey="a.jpg", thumbnailKey="images/alice/../../b.jpg"))
    assert {d["field"] for d in json.loads(both.body)["error"]["details"]} == {"imageKey", "thumbnailKey"}


def test_a_refused_key_writes_nothing(api: Any) -> None:
    image_id = str(uuid.uuid4())

    assert put(api, image_id, legacy_body(imageKey="legacy/alice/castle.jpg")).status_code == 400

    assert api.http.get(f"/images/{image_id}", headers=user_headers("alice")).status_code == 404
