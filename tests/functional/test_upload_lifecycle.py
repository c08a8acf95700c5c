"""Uploads arrive tagged unprocessed; completed ones are re-tagged; the bucket's lifecycle
rule removes what stays unprocessed."""

from __future__ import annotations

from typing import Any

from tests.functional.support import decode_policy, image_bytes


def _state(stack: Any, key: str) -> str | None:
    tags = stack.s3.get_object_tagging(Bucket=stack.upload_bucket, Key=key)["TagSet"]
    return next((t["Value"] for t in tags if t["Key"] == "state"), None)


def _upload_like_the_form(stack: Any, created: dict[str, Any], data: bytes) -> str:
    # moto ignores the POST form's tagging field; put the object with the tag the policy pins.
    key: str = created["upload"]["fields"]["key"]
    stack.s3.put_object(Bucket=stack.upload_bucket, Key=key, Body=data, Tagging="state=unprocessed")
    return key


def test_the_upload_form_pins_the_unprocessed_tag(uploader):
    created = uploader.create("alice")
    fields = created["upload"]["fields"]
    conditions = decode_policy(fields["policy"])["conditions"]
    assert {"tagging": fields["tagging"]} in conditions
    assert "<Key>state</Key><Value>unprocessed</Value>" in fields["tagging"]


def test_a_completed_upload_is_kept_and_a_rejected_one_stays_unprocessed(uploader, aws_stack):
    from tests.functional.support import deliver, upload_notifications

    good = uploader.create("alice", size=len(image_bytes()))
    bad = uploader.create("alice", size=20)
    good_key = _upload_like_the_form(aws_stack, good, image_bytes())
    bad_key = _upload_like_the_form(aws_stack, bad, b"not an image at all!")
    deliver(uploader.api, upload_notifications(aws_stack))

    assert uploader.status(good["id"])["status"] == "completed"
    assert uploader.status(bad["id"])["status"] == "failed"
    assert _state(aws_stack, good_key) == "processed"
    assert _state(aws_stack, bad_key) == "unprocessed"


def test_the_upload_bucket_expires_unprocessed_uploads(aws_stack):
    rules = aws_stack.s3.get_bucket_lifecycle_configuration(Bucket=aws_stack.upload_bucket)["Rules"]
    expiring = [r for r in rules if r.get("Expiration", {}).get("Days")]
    assert len(expiring) == 1
    rule = expiring[0]
    assert rule["Status"] == "Enabled"
    assert rule["Filter"]["And"]["Prefix"] == "uploads/"
    assert rule["Filter"]["And"]["Tags"] == [{"Key": "state", "Value": "unprocessed"}]
    assert 1 <= rule["Expiration"]["Days"] <= 7
    assert any(r.get("AbortIncompleteMultipartUpload") for r in rules)


def test_posting_the_same_form_again_after_completion_keeps_the_original(uploader, aws_stack):
    from tests.functional.support import deliver, upload_notifications

    created = uploader.create("alice", size=len(image_bytes()))
    key = _upload_like_the_form(aws_stack, created, image_bytes())
    deliver(uploader.api, upload_notifications(aws_stack))
    assert _state(aws_stack, key) == "processed"

    _upload_like_the_form(aws_stack, created, image_bytes())  # the form is valid for 15 minutes
    deliver(uploader.api, upload_notifications(aws_stack))

    assert uploader.status(created["id"])["status"] == "completed"
    assert _state(aws_stack, key) == "processed"  # else the lifecycle rule would delete it


def test_a_delete_while_the_image_is_processed_leaves_no_renditions(uploader, aws_stack, api, auth_for):
    from chalicelib import dependencies
    from chalicelib.services.processing import ProcessingService, UploadedObject
    from chalicelib.settings import get_settings
    from processors import process_image

    created = uploader.create("alice", size=len(image_bytes()))
    key = _upload_like_the_form(aws_stack, created, image_bytes())

    def deleted_meanwhile(data: bytes, limits: Any) -> Any:
        result = process_image(data, limits)
        assert api.http.delete(f"/images/{created['id']}", headers=auth_for("alice")).status_code == 204
        return result

    processor = ProcessingService(
        dependencies.image_repository(),
        dependencies.object_store(),
        dependencies.event_publisher(),
        dependencies.presenter(),
        get_settings(),
        processor=deleted_meanwhile,
    )
    assert processor.handle_object(UploadedObject(aws_stack.upload_bucket, key)) == "ignored"

    assert aws_stack.s3.list_objects_v2(Bucket=aws_stack.image_bucket).get("KeyCount", 0) == 0
    assert aws_stack.s3.list_objects_v2(Bucket=aws_stack.upload_bucket, Prefix=key).get("KeyCount", 0) == 0
    assert dependencies.image_repository().get(created["id"]) is None
