"""Fault injection for the reliability tests, without patching internals.

* ``FaultyClient`` wraps a boto3 client: chosen calls fail with an AWS error, either
  before the request (throttling, 5xx) or after it was applied (a lost response).
  Every call can also be serialised, as each real DynamoDB request is atomic (moto's
  TransactWriteItems is not thread-safe, see tests/functional/test_idempotency.py).
* ``Crash...`` adapters subclass the real ones and raise ``SimulatedCrash`` right after a
  side effect happened, as a Lambda killed at that point would leave things.
* ``settled`` checks the invariants every scenario must end with.
"""

from __future__ import annotations

import json
import threading
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from botocore.exceptions import ClientError

from chalicelib.models.domain import ImageRecord, ProcessingOutcome, versioned_thumbnail_key
from chalicelib.models.responses import ImageEvent
from chalicelib.repositories.events import EventPublisher
from chalicelib.repositories.images import ImageRepository
from chalicelib.repositories.storage import ObjectStore
from chalicelib.services.presenter import Presenter
from chalicelib.services.processing import ProcessingService
from chalicelib.settings import get_settings
from tests.functional.support import CapturedEvent, image_item


class SimulatedCrash(Exception):
    """The Lambda died here (timeout, out of memory, a deploy): nothing after this ran."""


def aws_error(code: str, status: int, operation: str) -> ClientError:
    response: Any = {
        "Error": {"Code": code, "Message": f"simulated {code}"},
        "ResponseMetadata": {"HTTPStatusCode": status},
    }
    return ClientError(response, operation)


THROTTLED = ("ProvisionedThroughputExceededException", 400)
SERVER_ERROR = ("InternalError", 500)
SNS_ERROR = ("InternalError", 500)


@dataclass
class Fault:
    method: str  # boto3 method name, e.g. "update_item"
    calls: frozenset[int]  # which calls of that method fail (1-based)
    code: str
    status: int
    applied: bool = False  # True: the request took effect, then the response was lost


class FaultyClient:
    """A boto3 client whose chosen calls fail; every call optionally serialised."""

    def __init__(self, client: Any, *faults: Fault, serialise: bool = False) -> None:
        self._client = client
        self._faults = list(faults)
        self._lock = threading.Lock()
        self._serialise = serialise
        self.calls: Counter[str] = Counter()
        self.injected: list[str] = []

    def __getattr__(self, name: str) -> Any:
        attribute = getattr(self._client, name)
        if not callable(attribute) or name.startswith("_") or name in ("can_paginate", "get_paginator"):
            return attribute

        def call(*args: Any, **kwargs: Any) -> Any:
            with self._lock:
                self.calls[name] += 1
                number = self.calls[name]
                fault = next((f for f in self._faults if f.method == name and number in f.calls), None)
                if fault is not None:
                    self.injected.append(f"{name}#{number}:{fault.code}")
            if fault is not None and not fault.applied:
                raise aws_error(fault.code, fault.status, name)
            if self._serialise:
                with self._lock:
                    result = attribute(*args, **kwargs)
            else:
                result = attribute(*args, **kwargs)
            if fault is not None:
                raise aws_error(fault.code, fault.status, name)
            return result

        return call


# -- crash points: the side effect happens, then the process dies ---------------------


class CrashAfterWrite(ObjectStore):
    """Dies right after writing the rendition, the thumbnail, or either (``crash_on``)."""

    crash_on: str = "any"

    def write_image(self, key: str, data: bytes, content_type: str = "image/webp") -> None:
        super().write_image(key, data, content_type)
        kind = "thumbnail" if "thumbnail" in key else "rendition"
        if self.crash_on in (kind, "any"):
            raise SimulatedCrash(f"after writing the {kind}")


class CrashAfterTransition(ImageRepository):
    """Dies right after ``processing -> completed|failed`` was stored."""

    def finish_processing(self, image_id: str, outcome: ProcessingOutcome, event_id: str, now: str) -> ImageRecord:
        super().finish_processing(image_id, outcome, event_id, now)
        raise SimulatedCrash("after the state change")


class CrashAfterStart(ImageRepository):
    """Dies right after ``pending -> processing`` was stored."""

    def start_processing(self, image_id: str, now: str, deadline: str) -> ImageRecord:
        super().start_processing(image_id, now, deadline)
        raise SimulatedCrash("after start_processing")


class CrashAfterPublish(EventPublisher):
    """Dies right after SNS accepted the event (before the record says 'published')."""

    def publish(self, event: ImageEvent) -> None:
        super().publish(event)
        raise SimulatedCrash("after the publish")


class CrashAfterMark(ImageRepository):
    """Dies right after the record says 'published' (the very last side effect)."""

    def mark_event_published(self, image_id: str, event_id: str) -> None:
        super().mark_event_published(image_id, event_id)
        raise SimulatedCrash("after marking the event published")


class RivalFinishesFirst(ImageRepository):
    """Before this delivery's ``finish_processing``, ``rival`` runs (another delivery, a delete)."""

    rival: Callable[[], object] | None = None

    def finish_processing(self, image_id: str, outcome: ProcessingOutcome, event_id: str, now: str) -> ImageRecord:
        rival, self.rival = self.rival, None
        if rival is not None:
            rival()
        return super().finish_processing(image_id, outcome, event_id, now)


# -- wiring -------------------------------------------------------------------------


@dataclass
class Adapters:
    """The processor's adapters over the moto stack; any of them may be replaced."""

    stack: Any
    dynamodb: Any = None
    s3: Any = None
    sns: Any = None
    repository_class: type[ImageRepository] = ImageRepository
    store_class: type[ObjectStore] = ObjectStore
    publisher_class: type[EventPublisher] = EventPublisher
    store_options: dict[str, Any] = field(default_factory=dict)

    def service(self) -> ProcessingService:
        settings = get_settings()
        dynamodb: Any = self.dynamodb or FaultyClient(self.stack.dynamodb, serialise=True)
        s3 = self.s3 or self.stack.s3
        images = self.repository_class(dynamodb, settings.table_name)
        store = self.store_class(s3, s3, settings.upload_bucket, settings.image_bucket)
        for name, value in self.store_options.items():
            setattr(store, name, value)
        publisher = self.publisher_class(self.sns or self.stack.sns, settings.events_topic_arn)
        return ProcessingService(images, store, publisher, Presenter(settings.public_image_base_url), settings)


def healthy(stack: Any) -> ProcessingService:
    return Adapters(stack).service()


# -- invariants ---------------------------------------------------------------------


def events_of(events: list[CapturedEvent], image_id: str) -> list[CapturedEvent]:
    return [e for e in events if e.body["image"]["id"] == image_id]


def settled(stack: Any, events: list[CapturedEvent], image_id: str, status: str = "completed") -> dict[str, Any]:
    """Exactly one terminal state, its outputs present, exactly one logical event.

    Returns the record. Deliveries of the event may repeat (same eventId), but every
    delivery must be identical, body and attributes.
    """
    item = image_item(stack, image_id)
    assert item is not None, "the record is gone"
    assert item["status"] == status, item
    assert item["eventPublished"] is True, "the record does not say its event was published"
    assert "GSI3PK" not in item, "a settled record is still in the sweep index"
    if status == "completed":
        ladder = [rendition["key"] for rendition in item["renditions"]]
        for key in (*ladder, versioned_thumbnail_key(item["userId"], image_id, item["renditionVersion"])):
            head = stack.s3.head_object(Bucket=stack.image_bucket, Key=key)
            assert head["ContentLength"] > 0, key
    mine = events_of(events, image_id)
    assert mine, "no event was published"
    assert len({e.body["eventId"] for e in mine}) == 1, [e.body for e in mine]
    assert len({json.dumps(e.body, sort_keys=True) for e in mine}) == 1, "deliveries of one event differ"
    assert len({json.dumps(e.attributes, sort_keys=True) for e in mine}) == 1, "attributes differ"
    assert mine[0].body["type"] == f"image.{status}"
    assert mine[0].body["eventId"] == item["eventId"]
    assert mine[0].attributes == {"eventType": f"image.{status}", "userId": item["userId"]}
    return item
