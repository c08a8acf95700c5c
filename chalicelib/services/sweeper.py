"""The scheduled sweep: expires abandoned uploads and relays unpublished events.

It reads only the sparse GSI3 index, which holds exactly the records that need it:
pending images (due when their upload window closes) and terminal images whose event
is not yet published (due at once). Everything it does is safe to repeat.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta

from chalicelib import logs
from chalicelib.errors import ConditionFailed
from chalicelib.metrics import NO_METRICS, Metrics
from chalicelib.models.common import ImageStatus, format_time, parse_time, utc_now
from chalicelib.models.domain import ImageRecord, event_id_for
from chalicelib.repositories.images import SWEEP_SHARDS, ImageRepository
from chalicelib.repositories.storage import ObjectStore
from chalicelib.services.announcer import EventAnnouncer


@dataclass
class SweepReport:
    expired: int = 0
    announced: int = 0
    not_yet: int = 0


class Sweeper:
    def __init__(
        self,
        images: ImageRepository,
        store: ObjectStore,
        announcer: EventAnnouncer,
        grace: timedelta,
        relay_delay: timedelta = timedelta(seconds=60),
        clock: Callable[[], datetime] = utc_now,
        metrics: Metrics = NO_METRICS,
    ) -> None:
        self._images = images
        self._store = store
        self._announcer = announcer
        self._grace = grace
        # The processor publishes right after the transition; relaying only older entries
        # keeps the sweep from racing it into a second delivery.
        self._relay_delay = relay_delay
        self._clock = clock
        self._metrics = metrics

    def run(self, limit_per_partition: int = 200) -> SweepReport:
        report = SweepReport()
        now = self._clock()
        for shard in range(SWEEP_SHARDS):
            for record in self._images.due_for_sweep(f"SWEEP#{shard}", format_time(now), limit_per_partition):
                with logs.log_context(imageId=record.id, userId=record.user_id):
                    self._sweep_one(record, now, report)
        if report.expired or report.announced:
            logs.info("sweep finished", expired=report.expired, announced=report.announced)
        return report

    def _sweep_one(self, record: ImageRecord, now: datetime, report: SweepReport) -> None:
        if record.status is ImageStatus.PENDING:
            expired = self._expire(record, now)
            if expired is None:
                report.not_yet += 1
                return
            record = expired
            report.expired += 1
        elif not record.status.is_terminal:
            self._images.leave_sweep(record.id)  # processing: the queue owns it now
            return
        elif parse_time(record.updated_at) > now - self._relay_delay:
            report.not_yet += 1  # the processor is publishing it right now
            return
        report.announced += self._announcer.announce(record)

    def _expire(self, record: ImageRecord, now: datetime) -> ImageRecord | None:
        # An upload that started just before its window closed may still be arriving.
        closed_before = now - self._grace
        if record.upload_expires_at is None or parse_time(record.upload_expires_at) >= closed_before:
            return None
        try:
            expired = self._images.expire(
                record.id,
                event_id_for(record.id, ImageStatus.EXPIRED),
                closed_before=format_time(closed_before),
                now=format_time(now),
            )
        except ConditionFailed:
            return None  # the upload arrived meanwhile
        # A file that arrived after the window closed belongs to nobody: remove it.
        self._store.delete_upload(expired.upload_key)
        logs.info("abandoned upload expired")
        self._metrics.emit("UploadsExpired", 1)
        return expired
