"""The processor: S3 ObjectCreated notifications arrive through the upload queue.

``app.handle_upload_events`` is the Lambda handler (every function's handler lives in
``app.py``, so that each runs the same init: logging, tracing, the collector pause).

A record that fails with a fault a retry may fix is left on the queue (and reaches the
dead-letter queue after maxReceiveCount attempts); the others are acknowledged. Chalice
cannot enable ReportBatchItemFailures, so when a batch has failures the handler deletes
the records that succeeded itself and then raises: Lambda returns only the failed ones.

Each image's processing is bounded (``IMAGE_TIMEOUT_SECONDS``, enforced by the
processor), and a record starts only while that much time and :data:`FINISH_MARGIN_SECONDS`
are left in the invocation: a record that could not finish before the function timeout
is not started and goes back to the queue with the failed ones (it is not failed), so
one slow image never makes the others of its batch run into the Lambda timeout.
"""

from __future__ import annotations

import os
from functools import lru_cache
from typing import Any

from chalice.app import SQSEvent, SQSRecord

from chalicelib import aws, dependencies, logs
from chalicelib.settings import get_settings

# Read at import: Chalice needs the queue name when it builds the deployment.
UPLOAD_QUEUE_NAME = os.environ.get("UPLOAD_QUEUE_NAME", "image-service-uploads-local")


class BatchHadFailures(Exception):
    """Raised so the failed records of a batch return to the queue."""


@lru_cache(maxsize=8)
def _queue_url(queue_arn: str) -> str:
    name = queue_arn.rsplit(":", 1)[-1]
    return aws.sqs().get_queue_url(QueueName=name)["QueueUrl"]


def _acknowledge(records: list[SQSRecord]) -> None:
    for record in records:
        raw: dict[str, Any] = record.to_dict()
        try:
            aws.sqs().delete_message(QueueUrl=_queue_url(raw["eventSourceARN"]), ReceiptHandle=record.receipt_handle)
        except Exception:  # a redelivery of a finished record is harmless
            logs.warning("could not acknowledge a processed record", messageId=raw.get("messageId"))


BATCH_SIZE = 5

#: Time a record needs beyond its image's own budget: the conditional writes, the two
#: rendition PUTs and the event (well under a second in AWS; the AWS clients' timeouts
#: bound a slow one).
FINISH_MARGIN_SECONDS = 5.0


def _time_left_ms(event: SQSEvent) -> int | None:
    """What the invocation has left (None when the context does not say)."""
    remaining = getattr(event.context, "get_remaining_time_in_millis", None)
    return int(remaining()) if callable(remaining) else None


def handle_batch(event: SQSEvent) -> None:
    service = dependencies.processing_service()
    needed_ms = (get_settings().image_timeout_seconds + FINISH_MARGIN_SECONDS) * 1000
    done: list[SQSRecord] = []
    failed = 0
    for record in event:
        message_id = record.to_dict().get("messageId")
        with logs.log_context(messageId=message_id):
            left = _time_left_ms(event)
            if left is not None and left < needed_ms:
                failed += 1
                logs.warning("too little time left in this invocation; the record goes back to the queue", leftMs=left)
                continue
            try:
                service.handle_message(record.body)
            except Exception:
                failed += 1
                logs.error("upload event failed; it will be retried", exc_info=True)
                continue
        done.append(record)
    if failed:
        _acknowledge(done)
        raise BatchHadFailures(f"{failed} record(s) of the batch will be retried")
