"""infra.provision against moto: a second run finds nothing to change."""

from __future__ import annotations

import os

from infra.provision import Clients, Report, StageResources, provision
from tests.functional.conftest import Stack
from tests.functional.support import receive_all


def provision_again() -> Report:
    resources = StageResources.from_environment("local", dict(os.environ))
    return provision(resources, Clients.create("us-east-1"))


def changes_to(report: Report, kind: str) -> list[str]:
    return [change for change in report.changes if change.startswith(f"{kind} ")]


def test_a_second_provisioning_leaves_the_queues_unchanged(aws_stack: Stack) -> None:
    assert changes_to(provision_again(), "queue") == []


def test_a_second_provisioning_leaves_the_topic_unchanged(aws_stack: Stack) -> None:
    assert changes_to(provision_again(), "topic") == []


def test_a_second_provisioning_changes_no_table_or_bucket_and_keeps_uploads_flowing(aws_stack: Stack) -> None:
    report = provision_again()

    assert changes_to(report, "table") == []
    assert changes_to(report, "bucket") == []
    receive_all(aws_stack.sqs, aws_stack.queue_url)  # drop test events from reconfiguration

    aws_stack.s3.put_object(Bucket=aws_stack.upload_bucket, Key="uploads/alice/01JD3ZK4Q8N6W2T1R5Y7B9C0DE", Body=b"x")

    bodies = [m["Body"] for m in receive_all(aws_stack.sqs, aws_stack.queue_url)]
    assert len(bodies) == 1
    assert "ObjectCreated" in bodies[0]
