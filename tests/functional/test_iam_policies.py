"""The committed IAM policies grant what the code calls, and nothing on "*" but X-Ray.

Each phase (API requests, processing, the sweep) runs against moto with botocore hooks
recording the AWS operations the code makes; every operation must be allowed by that
function's policy for the resources it touched.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import timedelta
from fnmatch import fnmatchcase as fnmatch
from typing import Any

import pytest

from chalicelib import aws, dependencies
from chalicelib.models.common import format_time, utc_now
from chalicelib.repositories.events import EventPublisher
from chalicelib.repositories.images import ImageQueries
from chalicelib.repositories.queue import UploadQueue
from chalicelib.services.announcer import EventAnnouncer
from chalicelib.services.sweeper import Sweeper
from chalicelib.settings import get_settings
from infra import iam_policies
from infra.stage_config import stage_environment
from tests.functional.support import image_bytes

# botocore operation -> the IAM action that authorises it
IAM_ACTION = {
    "dynamodb.GetItem": "dynamodb:GetItem",
    "dynamodb.PutItem": "dynamodb:PutItem",
    "dynamodb.UpdateItem": "dynamodb:UpdateItem",
    "dynamodb.DeleteItem": "dynamodb:DeleteItem",
    "dynamodb.Query": "dynamodb:Query",
    "dynamodb.TransactWriteItems": "dynamodb:PutItem",
    "s3.HeadObject": "s3:GetObject",
    "s3.GetObject": "s3:GetObject",
    "s3.PutObject": "s3:PutObject",
    "s3.PutObjectTagging": "s3:PutObjectTagging",
    "s3.DeleteObject": "s3:DeleteObject",
    "s3.DeleteObjects": "s3:DeleteObject",
    "sns.Publish": "sns:Publish",
    "sns.Subscribe": "sns:Subscribe",
    "sns.Unsubscribe": "sns:Unsubscribe",
    "sns.GetSubscriptionAttributes": "sns:GetSubscriptionAttributes",
    "sqs.GetQueueUrl": "sqs:GetQueueUrl",
    "sqs.DeleteMessage": "sqs:DeleteMessage",
    "sqs.SendMessage": "sqs:SendMessage",
}


@contextmanager
def recorded_operations() -> Iterator[set[str]]:
    operations: set[str] = set()

    def record(event_name: str, **_: Any) -> None:
        operations.add(event_name.split(".", 1)[1])

    clients = [aws.dynamodb(), aws.s3(), aws.sns(), aws.sqs()]
    for client in clients:
        client.meta.events.register("before-call", record)
    try:
        yield operations
    finally:
        for client in clients:
            client.meta.events.unregister("before-call", record)


def _granted(stage: str, suffix: str) -> set[str]:
    document = iam_policies.policy_documents(stage)[f"policy-{stage}{suffix}.json"]
    return {action for statement in document["Statement"] for action in statement["Action"]}


def test_the_committed_policies_are_the_generated_ones():
    assert iam_policies.main(["--all", "--check"]) == 0


def test_no_policy_grants_a_wildcard_resource_except_for_xray():
    for stage in iam_policies.deployed_stages():
        for name, document in iam_policies.policy_documents(stage).items():
            for statement in document["Statement"]:
                if "*" in statement["Resource"]:
                    assert all(action.startswith("xray:") for action in statement["Action"]), (name, statement)
                assert not any(action.endswith(":*") or action == "*" for action in statement["Action"]), name


def test_each_function_is_granted_exactly_the_kinds_of_calls_its_code_makes(api, aws_stack, auth_for):
    headers = auth_for("iam")
    with recorded_operations() as api_calls:
        created = api.http.post(
            "/images",
            headers={**headers, "Idempotency-Key": "k"},
            body=json.dumps({"filename": "a.jpg", "contentType": "image/jpeg", "size": len(image_bytes())}),
        ).json_body
        image_id = created["id"]
        api.http.get(f"/images/{image_id}", headers=headers)
        api.http.get("/images?limit=5", headers=headers)
        api.http.patch(f"/images/{image_id}", headers=headers, body=json.dumps({"title": "t", "version": 1}))
        webhook = api.http.post("/webhooks", headers=headers, body=json.dumps({"url": "http://127.0.0.1:9/h"}))
        api.http.get("/webhooks", headers=headers)
        api.http.delete(f"/webhooks/{webhook.json_body['id']}", headers=headers)

    aws_stack.s3.put_object(Bucket=aws_stack.upload_bucket, Key=created["upload"]["fields"]["key"], Body=image_bytes())
    bodies = [
        m["Body"]
        for m in aws_stack.sqs.receive_message(QueueUrl=aws_stack.queue_url, MaxNumberOfMessages=10)["Messages"]
    ]
    with recorded_operations() as processor_calls:
        for body in bodies:
            dependencies.processing_service().handle_message(body)

    def create_upload(name: str) -> dict[str, Any]:
        body = {"filename": name, "contentType": "image/jpeg", "size": len(image_bytes())}
        created: dict[str, Any] = api.http.post("/images", headers=headers, body=json.dumps(body)).json_body
        return created

    abandoned = create_upload("b.jpg")  # never uploaded: expires
    unprocessed = create_upload("c.jpg")  # uploaded, its notification lost: handed back to the queue
    aws_stack.s3.put_object(Bucket=aws_stack.upload_bucket, Key=unprocessed["upload"]["fields"]["key"], Body=b"x")
    stalled = create_upload("d.jpg")  # processing, and no delivery finished it: failed
    started = format_time(utc_now())
    dependencies.image_repository().start_processing(stalled["id"], started, deadline=started)
    half_deleted = create_upload("e.jpg")  # its DELETE stopped after the tombstone: finished
    ImageQueries(aws.dynamodb(), get_settings().table_name).begin_delete(half_deleted["id"], "iam", started)
    later = utc_now() + timedelta(hours=2)
    sweeper = Sweeper(
        dependencies.image_repository(),
        dependencies.object_store(),
        EventAnnouncer(
            dependencies.image_repository(),
            EventPublisher(aws.sns(), get_settings().events_topic_arn),
            dependencies.presenter(),
        ),
        UploadQueue(aws.sqs(), get_settings().upload_queue_name),
        grace=timedelta(minutes=15),
        processing_deadline=timedelta(hours=1),
        queries=ImageQueries(aws.dynamodb(), get_settings().table_name),
        clock=lambda: later,
    )
    with recorded_operations() as sweeper_calls:
        report = sweeper.run()
    assert (report.expired, report.resubmitted, report.failed, report.deletes_finished) == (1, 1, 1, 1)
    with recorded_operations() as delete_calls:
        assert api.http.delete(f"/images/{image_id}", headers=headers).status_code == 204
        for other in (abandoned, unprocessed, stalled):
            assert api.http.delete(f"/images/{other['id']}", headers=headers).status_code == 204

    for phase, calls, suffix in [
        ("api", api_calls | delete_calls, ""),
        ("processor", processor_calls, "-processor"),
        ("sweeper", sweeper_calls, "-sweeper"),
    ]:
        needed = {IAM_ACTION[call] for call in calls}
        assert calls, phase
        assert needed <= _granted("prod", suffix), (phase, needed - _granted("prod", suffix))
    # The processor and the sweeper cannot do what only the API does.
    assert "sns:Subscribe" not in _granted("prod", "-processor") | _granted("prod", "-sweeper")
    # (Their PutItem is the duplicate index's, on its own partitions only: tested below.)
    table = iam_policies.StageArns.from_environment("prod", stage_environment("prod")).table
    any_item = _granted_dynamodb("prod", "-processor") | _granted_dynamodb("prod", "-sweeper")
    assert ("dynamodb:PutItem", table) not in any_item


# -- the API's DynamoDB grants: exactly the actions and the resources its code uses -------


@contextmanager
def recorded_dynamodb_grants(table_arn: str) -> Iterator[set[tuple[str, str]]]:
    """(IAM action, resource ARN) of every DynamoDB call made meanwhile: a Query on an
    index needs the index's ARN, and each action of a transaction its own action."""
    needed: set[tuple[str, str]] = set()
    transaction_action = {
        "Put": "dynamodb:PutItem",
        "Update": "dynamodb:UpdateItem",
        "Delete": "dynamodb:DeleteItem",
        "ConditionCheck": "dynamodb:ConditionCheckItem",
    }

    def record(event_name: str, params: dict[str, Any], **_: Any) -> None:
        operation = event_name.split(".", 2)[2]
        if operation == "TransactWriteItems":
            for action in params["TransactItems"]:
                needed.update((transaction_action[kind], table_arn) for kind in action)
        elif operation == "Query" and "IndexName" in params:
            needed.add(("dynamodb:Query", f"{table_arn}/index/{params['IndexName']}"))
        else:
            needed.add((f"dynamodb:{operation}", table_arn))

    client = aws.dynamodb()
    client.meta.events.register("before-parameter-build.dynamodb", record)
    try:
        yield needed
    finally:
        client.meta.events.unregister("before-parameter-build.dynamodb", record)


def _granted_dynamodb(stage: str, suffix: str) -> set[tuple[str, str]]:
    """What the role may do on any item: the duplicate index's statement, limited to its
    own partitions by ``dynamodb:LeadingKeys``, is checked on its own (below)."""
    document = iam_policies.policy_documents(stage)[f"policy-{stage}{suffix}.json"]
    return {
        (action, resource)
        for statement in document["Statement"]
        if statement["Sid"] != "DuplicateIndex"
        for action in statement["Action"]
        if action.startswith("dynamodb:")
        for resource in statement["Resource"]
    }


@pytest.mark.parametrize("suffix", ["", "-processor", "-sweeper"])
def test_the_duplicate_index_grant_reaches_only_its_own_partitions(suffix: str) -> None:
    from chalicelib.repositories import keys

    document = iam_policies.policy_documents("prod")[f"policy-prod{suffix}.json"]
    (statement,) = [s for s in document["Statement"] if s["Sid"] == "DuplicateIndex"]
    table = iam_policies.StageArns.from_environment("prod", stage_environment("prod")).table
    assert statement["Resource"] == [table]  # the table's items, no index
    assert set(statement["Action"]) == {"dynamodb:Query", "dynamodb:PutItem", "dynamodb:DeleteItem"}
    patterns = statement["Condition"]["ForAllValues:StringLike"]["dynamodb:LeadingKeys"]
    assert statement["Condition"]["Null"] == {"dynamodb:LeadingKeys": ["false"]}
    # Every key the duplicate index writes matches; no image, webhook or idempotency key does.
    allowed = [keys.phash_partition("alice", "3:1f2"), keys.duplicates_partition("01J00000000000000000000001")]
    refused = [keys.image_pk("01J00000000000000000000001"), "WEBHOOK#x", "IDEMPOTENCY#x", "USER#alice"]
    assert all(any(fnmatch(key, p) for p in patterns) for key in allowed)
    assert not any(fnmatch(key, p) for key in refused for p in patterns)


def test_the_api_is_granted_exactly_the_dynamodb_actions_and_indexes_its_requests_use(api, auth_for):
    from tests.migration.test_import_endpoint import legacy_body, service_headers

    headers = auth_for("iam")
    table_arn = iam_policies.StageArns.from_environment("prod", stage_environment("prod")).table
    with recorded_dynamodb_grants(table_arn) as needed:
        keyed = {**headers, "Idempotency-Key": "k"}
        body = json.dumps({"filename": "a.jpg", "contentType": "image/jpeg", "size": 10, "albumId": "a1"})
        image_id = api.http.post("/images", headers=keyed, body=body).json_body["id"]
        plain = api.http.post("/images", headers=headers, body=body).json_body["id"]
        assert api.http.get(f"/images/{image_id}", headers=headers).status_code == 200
        assert api.http.get(f"/images/{image_id}/status", headers=headers).status_code == 200
        assert api.http.get("/images?limit=5", headers=headers).status_code == 200
        assert api.http.get("/images?albumId=a1", headers=headers).status_code == 200
        patch = json.dumps({"title": "t", "version": 1})
        assert api.http.patch(f"/images/{image_id}", headers=headers, body=patch).status_code == 200
        webhook = api.http.post("/webhooks", headers=headers, body=json.dumps({"url": "http://127.0.0.1:9/h"}))
        assert api.http.get("/webhooks", headers=headers).status_code == 200
        assert api.http.delete(f"/webhooks/{webhook.json_body['id']}", headers=headers).status_code == 204
        for deleted in (image_id, plain):
            assert api.http.delete(f"/images/{deleted}", headers=headers).status_code == 204
        legacy_id = "0b1e9c4e-5f63-4c2a-9d1b-2f0c8a7e6d5c"
        for updated_at in ("2022-01-01T00:00:00+00:00", "2023-01-01T00:00:00+00:00"):
            imported = api.http.put(
                f"/internal/images/{legacy_id}",
                headers=service_headers(),
                body=json.dumps(legacy_body(updatedAt=updated_at)),
            )
            assert imported.status_code in (200, 201)

    granted = _granted_dynamodb("prod", "")
    # Everything the requests did is allowed (IAM resource patterns), and nothing more is
    # granted: no unused action, no wildcard, no index the API does not query.
    assert {(a, r) for a, r in needed if not any(a == g and fnmatch(r, p) for g, p in granted)} == set()
    assert granted - needed == set()
    assert ("dynamodb:Query", f"{table_arn}/index/GSI3") not in granted  # the sweeper's index


def test_every_index_the_api_code_names_is_granted_and_the_sweep_index_only_to_the_sweeper():
    """A source scan beside the recorded calls: a new query on an index fails here."""
    import re

    from chalicelib.repositories import keys
    from tests.conftest import PROJECT_ROOT

    # An index is named in a literal or by its constant in keys.py (USER_INDEX, ...).
    named = {
        path.name: {
            literal or getattr(keys, constant)
            for literal, constant in re.findall(r'IndexName=(?:"(\w+)"|([A-Z_]+\b))', path.read_text())
        }
        for path in (PROJECT_ROOT / "chalicelib" / "repositories").glob("*.py")
    }
    api_indexes = set().union(*named.values()) - {"GSI3"}
    assert api_indexes == {"GSI1", "GSI2"}
    arns = iam_policies.StageArns.from_environment("prod", stage_environment("prod"))
    api_queries = {r for a, r in _granted_dynamodb("prod", "") if a == "dynamodb:Query"}
    assert api_queries == {f"{arns.table}/index/{index}" for index in api_indexes}
    sweeper_queries = {r for a, r in _granted_dynamodb("prod", "-sweeper") if a == "dynamodb:Query"}
    assert sweeper_queries == {f"{arns.table}/index/GSI3"}


# -- the processor may list its upload prefix: S3 answers 404, not 403, for a gone upload --


def _allows(document: dict[str, Any], action: str, resource: str, context: dict[str, str]) -> bool:
    """IAM's Allow evaluation for what these policies use: action names, resource
    patterns, and ``StringLike`` conditions (a key missing from the request fails them)."""

    def condition_holds(condition: dict[str, dict[str, Any]]) -> bool:
        for operator, keys in condition.items():
            assert operator == "StringLike", operator  # the only operator the policies use
            for key, patterns in keys.items():
                values = [patterns] if isinstance(patterns, str) else patterns
                if key not in context or not any(fnmatch(context[key], p) for p in values):
                    return False
        return True

    return any(
        statement["Effect"] == "Allow"
        and action in statement["Action"]
        and any(fnmatch(resource, pattern) for pattern in statement["Resource"])
        and condition_holds(statement.get("Condition", {}))
        for statement in document["Statement"]
    )


def test_the_processor_may_list_exactly_the_upload_prefix_it_reads_so_a_missing_upload_is_a_404(
    api, aws_stack, auth_for
):
    """Without s3:ListBucket, HeadObject/GetObject of a missing key is 403 AccessDenied in
    AWS and the processor's "upload is gone: ignore the message" path never runs."""
    headers = auth_for("iam")
    body = json.dumps({"filename": "a.jpg", "contentType": "image/jpeg", "size": len(image_bytes())})
    created = api.http.post("/images", headers=headers, body=body).json_body
    aws_stack.s3.put_object(Bucket=aws_stack.upload_bucket, Key=created["upload"]["fields"]["key"], Body=image_bytes())
    messages = aws_stack.sqs.receive_message(QueueUrl=aws_stack.queue_url, MaxNumberOfMessages=10)["Messages"]
    read_keys: set[str] = set()

    def record(params: dict[str, Any], **_: Any) -> None:
        read_keys.add(params["Key"])

    s3 = aws.s3()
    for operation in ("HeadObject", "GetObject"):
        s3.meta.events.register(f"before-parameter-build.s3.{operation}", record)
    try:
        for message in messages:
            dependencies.processing_service().handle_message(message["Body"])
    finally:
        for operation in ("HeadObject", "GetObject"):
            s3.meta.events.unregister(f"before-parameter-build.s3.{operation}", record)
    assert read_keys == {created["upload"]["fields"]["key"]}

    for stage in iam_policies.deployed_stages():
        document = iam_policies.policy_documents(stage)[f"policy-{stage}-processor.json"]
        bucket = f"arn:aws:s3:::{stage_environment(stage)['UPLOAD_BUCKET']}"
        for key in read_keys:
            assert _allows(document, "s3:GetObject", f"{bucket}/{key}", {}), (stage, key)
            # The check S3 makes for a missing key: may the caller list that key?
            assert _allows(document, "s3:ListBucket", bucket, {"s3:prefix": key}), (stage, key)
        # Listing stays confined to the upload prefix, on the upload bucket only.
        assert not _allows(document, "s3:ListBucket", bucket, {})
        assert not _allows(document, "s3:ListBucket", bucket, {"s3:prefix": ""})
        assert not _allows(document, "s3:ListBucket", bucket, {"s3:prefix": "images/"})
        image_bucket = f"arn:aws:s3:::{stage_environment(stage)['IMAGE_BUCKET']}"
        assert not _allows(document, "s3:ListBucket", image_bucket, {"s3:prefix": "uploads/x"})
        listing = [s for s in document["Statement"] if "s3:ListBucket" in s["Action"]]
        assert listing == [
            {
                "Sid": "ListUploads",
                "Effect": "Allow",
                "Action": ["s3:ListBucket"],
                "Resource": [bucket],
                "Condition": {"StringLike": {"s3:prefix": ["uploads/*"]}},
            }
        ]


def test_the_sweeper_may_look_for_an_overdue_upload_and_gets_a_404_when_there_is_none(api, aws_stack, auth_for):
    """The sweep HEADs the upload of every overdue pending image: a 403 for a missing file
    (no s3:ListBucket) would fail each sweep instead of expiring the image."""
    headers = auth_for("iam")
    body = json.dumps({"filename": "a.jpg", "contentType": "image/jpeg", "size": 10})
    created = api.http.post("/images", headers=headers, body=body).json_body
    key = created["upload"]["fields"]["key"]
    assert dependencies.object_store().upload_size(key) is None  # the sweep's check: a 404 in moto

    for stage in iam_policies.deployed_stages():
        document = iam_policies.policy_documents(stage)[f"policy-{stage}-sweeper.json"]
        bucket = f"arn:aws:s3:::{stage_environment(stage)['UPLOAD_BUCKET']}"
        assert _allows(document, "s3:GetObject", f"{bucket}/{key}", {}), stage
        assert _allows(document, "s3:ListBucket", bucket, {"s3:prefix": key}), stage
        assert not _allows(document, "s3:ListBucket", bucket, {"s3:prefix": "images/"}), stage


def test_the_processor_makes_no_queue_call_and_holds_only_what_its_event_source_mapping_needs(api, aws_stack, auth_for):
    """Lambda acknowledges the batch (ReportBatchItemFailures): a batch with a failed record
    makes no SQS call from the handler, so the role's queue grant is the event source
    mapping's own set (receive, delete, attributes), nothing the code would need."""
    from botocore.stub import Stubber

    from tests.functional.support import HANDLER

    headers = auth_for("iam")
    body = json.dumps({"filename": "a.jpg", "contentType": "image/jpeg", "size": len(image_bytes())})
    created = api.http.post("/images", headers=headers, body=body).json_body
    aws_stack.s3.put_object(Bucket=aws_stack.upload_bucket, Key=created["upload"]["fields"]["key"], Body=image_bytes())
    messages = aws_stack.sqs.receive_message(QueueUrl=aws_stack.queue_url, MaxNumberOfMessages=10)["Messages"]
    event = api.events.generate_sqs_event(
        message_bodies=[m["Body"] for m in messages], queue_name=get_settings().upload_queue_name
    )
    with recorded_operations() as calls, Stubber(aws.s3()) as stubber:
        # The first S3 call of the first record fails: that record is reported, not raised.
        stubber.add_client_error("head_object", service_error_code="InternalError", http_status_code=500)
        response = api.lambda_.invoke(HANDLER, event).payload
    assert len(response["batchItemFailures"]) == 1
    assert not {call for call in calls if call.startswith("sqs.")}, calls

    for stage in iam_policies.deployed_stages():
        granted = _granted(stage, "-processor")
        assert {action for action in granted if action.startswith("sqs:")} == set(
            iam_policies.EVENT_SOURCE_MAPPING_SQS_ACTIONS
        ), stage
