"""Show what sits in the upload dead-letter queue, and move it back once the cause is fixed.

    python scripts/redrive.py --stage dev              # list: count, ages, image ids
    python scripts/redrive.py --stage dev --move       # move every message back
    python scripts/redrive.py --stage local --move --max 10

Messages land in the DLQ after 5 failed receives (a transient fault that outlived the
retries, or a bug). Processing is idempotent, so moving a message back is always safe:
an image that completed meanwhile is left as it is. Each message is sent to the main
queue before it is deleted from the DLQ, so a crash duplicates at worst, never loses.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from typing import TYPE_CHECKING, Any

import boto3

from chalicelib.services.processing import parse_notification, parse_upload_key
from infra.stage_config import command_environment

if TYPE_CHECKING:
    from mypy_boto3_sqs import SQSClient


def describe(body: str) -> str:
    objects = parse_notification(body)
    if not objects:
        return "not an upload notification"
    parsed = [parse_upload_key(obj.key) for obj in objects]
    return ", ".join(f"image {p[1]} of {p[0]}" if p else f"key {o.key}" for p, o in zip(parsed, objects, strict=True))


def peek(sqs: SQSClient, dlq_url: str, limit: int) -> list[dict[str, Any]]:
    """Read up to ``limit`` messages, then make them visible again: looking consumes nothing."""
    seen: list[dict[str, Any]] = []
    while len(seen) < limit:
        batch = sqs.receive_message(
            QueueUrl=dlq_url,
            MaxNumberOfMessages=min(10, limit - len(seen)),
            VisibilityTimeout=30,
            AttributeNames=["All"],
            WaitTimeSeconds=1,
        ).get("Messages", [])
        if not batch:
            break
        seen += [dict(message) for message in batch]
    for start in range(0, len(seen), 10):
        sqs.change_message_visibility_batch(
            QueueUrl=dlq_url,
            Entries=[
                {"Id": str(i), "ReceiptHandle": m["ReceiptHandle"], "VisibilityTimeout": 0}
                for i, m in enumerate(seen[start : start + 10])
            ],
        )
    return seen


def move(sqs: SQSClient, dlq_url: str, queue_url: str, limit: int) -> int:
    moved = 0
    while moved < limit:
        batch = sqs.receive_message(
            QueueUrl=dlq_url, MaxNumberOfMessages=min(10, limit - moved), VisibilityTimeout=60, WaitTimeSeconds=1
        ).get("Messages", [])
        if not batch:
            break
        for message in batch:
            sqs.send_message(QueueUrl=queue_url, MessageBody=message["Body"])
            sqs.delete_message(QueueUrl=dlq_url, ReceiptHandle=message["ReceiptHandle"])
            moved += 1
            print(f"\rmoved {moved}", end="", file=sys.stderr, flush=True)
    print(file=sys.stderr)
    return moved


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--stage", required=True)
    parser.add_argument("--move", action="store_true", help="move the messages back to the upload queue")
    parser.add_argument("--max", type=int, default=1000, help="at most this many messages (default 1000)")
    parser.add_argument("--endpoint-url", default=os.environ.get("AWS_ENDPOINT_URL"))
    args = parser.parse_args(argv)
    environment = command_environment(parser, args.stage, args.endpoint_url)
    sqs: SQSClient = boto3.client(
        "sqs", region_name=environment.get("AWS_REGION", "us-east-1"), endpoint_url=args.endpoint_url
    )
    queue_name = environment["UPLOAD_QUEUE_NAME"]
    queue_url = sqs.get_queue_url(QueueName=queue_name)["QueueUrl"]
    dlq_url = sqs.get_queue_url(QueueName=f"{queue_name}-dlq")["QueueUrl"]
    attributes = sqs.get_queue_attributes(QueueUrl=dlq_url, AttributeNames=["ApproximateNumberOfMessages"])
    count = int(attributes["Attributes"].get("ApproximateNumberOfMessages", "0"))
    print(f"{queue_name}-dlq: about {count} message(s)")
    if not args.move:
        for message in peek(sqs, dlq_url, min(args.max, 50)):
            sent = int(message.get("Attributes", {}).get("SentTimestamp", "0")) / 1000
            age = f"{(time.time() - sent) / 3600:.1f} h" if sent else "?"
            receives = message.get("Attributes", {}).get("ApproximateReceiveCount", "?")
            print(f"  {message['MessageId']}  age {age}  receives {receives}  {describe(message['Body'])}")
        if count:
            print("fix the cause (see docs/runbooks), then run again with --move")
        return 0
    moved = move(sqs, dlq_url, queue_url, args.max)
    print(f"moved {moved} message(s) back to {queue_name}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
