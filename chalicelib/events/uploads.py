"""The processor: S3 ObjectCreated notifications arrive through the upload queue.

``app.handle_upload_events`` is the Lambda handler (every function's handler lives in
``app.py``, so that each runs the same init: logging, tracing, the collector pause).

Acknowledgement is Lambda's (SQS partial batch responses): the handler returns
``{"batchItemFailures": [{"itemIdentifier": <messageId>}, ...]}`` and the event source
mapping, which has ``FunctionResponseTypes: ["ReportBatchItemFailures"]`` (the packaged
template and the deploy path set it: Chalice has no option for it), deletes every other
record of the batch. The processor itself never deletes a message. A record that fails
with a fault a retry may fix is reported (it reaches the dead-letter queue after
maxReceiveCount attempts); the others are done. An exception out of the handler still
returns the whole batch.

Each image's processing is bounded (``IMAGE_TIMEOUT_SECONDS``, enforced by the
processor), and a record starts only while that much time and :data:`FINISH_MARGIN_SECONDS`
are left in the invocation: a record that could not finish before the function timeout
is not started and is reported with the failed ones (it is not failed), so one slow image
never makes the others of its batch run into the Lambda timeout.
"""

from __future__ import annotations

import os
from typing import TypedDict

from chalice.app import SQSEvent

from chalicelib import dependencies, logs
from chalicelib.settings import get_settings

# Read at import: Chalice needs the queue name when it builds the deployment.
UPLOAD_QUEUE_NAME = os.environ.get("UPLOAD_QUEUE_NAME", "image-service-uploads-local")

BATCH_SIZE = 5

#: Time a record needs beyond its image's own budget: the conditional writes, the two
#: rendition PUTs and the event (well under a second in AWS; the AWS clients' timeouts
#: bound a slow one).
FINISH_MARGIN_SECONDS = 5.0


class BatchItemFailure(TypedDict):
    itemIdentifier: str


class BatchResponse(TypedDict):
    """Lambda's partial batch response for SQS (ReportBatchItemFailures)."""

    batchItemFailures: list[BatchItemFailure]


def _time_left_ms(event: SQSEvent) -> int | None:
    """What the invocation has left (None when the context does not say)."""
    remaining = getattr(event.context, "get_remaining_time_in_millis", None)
    return int(remaining()) if callable(remaining) else None


def handle_batch(event: SQSEvent) -> BatchResponse:
    """Process each record; the ones to deliver again are the response's failures."""
    service = dependencies.processing_service()
    needed_ms = (get_settings().image_timeout_seconds + FINISH_MARGIN_SECONDS) * 1000
    failures: list[BatchItemFailure] = []
    for record in event:
        message_id = str(record.to_dict()["messageId"])
        with logs.log_context(messageId=message_id):
            left = _time_left_ms(event)
            if left is not None and left < needed_ms:
                failures.append({"itemIdentifier": message_id})
                logs.warning("too little time left in this invocation; the record goes back to the queue", leftMs=left)
                continue
            try:
                service.handle_message(record.body)
            except Exception:
                failures.append({"itemIdentifier": message_id})
                logs.error("upload event failed; it will be retried", exc_info=True)
    if failures:
        logs.warning("records of the batch go back to the queue", failed=len(failures))
    return {"batchItemFailures": failures}
