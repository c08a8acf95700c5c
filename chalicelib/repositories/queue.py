"""SQS adapter: hands an upload back to the processor's queue."""

from __future__ import annotations

import json
from typing import TYPE_CHECKING
from urllib.parse import quote_plus

from chalicelib.repositories.dynamo import translated_errors

if TYPE_CHECKING:
    from mypy_boto3_sqs import SQSClient

# The processor reads only ``eventName`` (any ``ObjectCreated:*``) and ``s3`` of a record.
RESUBMITTED = "ObjectCreated:Resubmitted"


class UploadQueue:
    """The upload queue, for uploads whose S3 notification never led to processing."""

    def __init__(self, client: SQSClient, queue_name: str) -> None:
        self._client = client
        self._queue_name = queue_name
        self._url: str | None = None

    def resubmit(self, bucket: str, key: str) -> None:
        """Queue a notification of the same shape S3 sends (keys URL-encoded, as S3 does)."""
        body = {
            "Records": [
                {
                    "eventSource": "image-service:sweeper",
                    "eventName": RESUBMITTED,
                    "s3": {"bucket": {"name": bucket}, "object": {"key": quote_plus(key, safe="/")}},
                }
            ]
        }
        with translated_errors():
            if self._url is None:
                self._url = self._client.get_queue_url(QueueName=self._queue_name)["QueueUrl"]
            self._client.send_message(QueueUrl=self._url, MessageBody=json.dumps(body))
