"""Publishes the one event of a terminal transition, until the record says it was."""

from __future__ import annotations

from chalicelib import logs
from chalicelib.errors import ConditionFailed
from chalicelib.metrics import NO_METRICS, Metrics
from chalicelib.models.domain import ImageRecord
from chalicelib.repositories.events import EventPublisher
from chalicelib.repositories.images import ImageRepository
from chalicelib.services.presenter import Presenter


class EventAnnouncer:
    def __init__(
        self,
        images: ImageRepository,
        publisher: EventPublisher,
        presenter: Presenter,
        metrics: Metrics = NO_METRICS,
    ) -> None:
        self._images = images
        self._publisher = publisher
        self._presenter = presenter
        self._metrics = metrics

    def announce(self, record: ImageRecord) -> bool:
        """Publish the record's event if it is not published yet; True when it published.

        The event id is fixed by the transition, so publishing again after a crash between
        the publish and the mark sends the same logical event, which subscribers de-duplicate.
        """
        if record.event_published or record.event_id is None or not record.status.is_terminal:
            return False
        if record.deleted_at is not None:
            return False  # its owner deleted it: no event, and the sweep index is the delete's now
        self._publisher.publish(self._presenter.event(record))
        try:
            self._images.mark_event_published(record.id, record.event_id)
        except ConditionFailed:
            # Deleted since it was read: the event went out, the tombstone keeps its sweep entry.
            logs.info("event published for an image being deleted", imageId=record.id, eventId=record.event_id)
        logs.info("event published", imageId=record.id, eventId=record.event_id, status=record.status.value)
        self._metrics.emit("EventsPublished", 1, EventType=record.status.value)
        return True
