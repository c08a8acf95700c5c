"""The scheduled sweep: settles what the queue could not, and relays unpublished events.

It reads only the sparse GSI3 index, which holds exactly the records that need it:

- pending images, due when their upload window closes: expired when no file arrived, or
  handed back to the upload queue when the file is there but was never processed (its
  notification went to the dead-letter queue, or the queue was backed up);
- processing images, due at their processing deadline: failed, because no delivery
  finished them (each crashed, timed out or ran out of retries);
- terminal images whose event is not yet published, due at once: the outbox's relay;
- images whose DELETE stopped after the tombstone, due ``DELETE_FINISH_DELAY`` after it:
  the sweep runs the delete's remaining steps (objects, CDN, record).

Everything it does is safe to repeat, and one record's fault does not stop the others.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta

from chalicelib import logs
from chalicelib.errors import ConditionFailed
from chalicelib.metrics import NO_METRICS, Metrics
from chalicelib.models.common import ImageStatus, format_time, parse_time, utc_now
from chalicelib.models.domain import ImageRecord, event_id_for
from chalicelib.repositories.cdn import CdnInvalidator
from chalicelib.repositories.images import STALLED_CODE, ImageQueries, ImageRepository
from chalicelib.repositories.keys import sweep_partitions
from chalicelib.repositories.queue import UploadQueue
from chalicelib.repositories.storage import ObjectStore
from chalicelib.services.announcer import EventAnnouncer
from chalicelib.services.duplicates import DuplicateFinder
from chalicelib.services.images import finish_deletion


@dataclass
class SweepReport:
    expired: int = 0
    resubmitted: int = 0
    failed: int = 0
    deletes_finished: int = 0
    announced: int = 0
    not_yet: int = 0
    errors: int = 0  # records left for the next run because something went wrong


class SweepIncomplete(Exception):
    """Some records could not be swept (each is logged); the next run tries them again."""


class Sweeper:
    def __init__(
        self,
        images: ImageRepository,
        store: ObjectStore,
        announcer: EventAnnouncer,
        queue: UploadQueue,
        grace: timedelta,
        processing_deadline: timedelta,
        queries: ImageQueries,
        cdn: CdnInvalidator | None = None,
        relay_delay: timedelta = timedelta(seconds=60),
        clock: Callable[[], datetime] = utc_now,
        metrics: Metrics = NO_METRICS,
        duplicates: DuplicateFinder | None = None,
    ) -> None:
        self._images = images
        self._duplicates = duplicates
        self._store = store
        self._announcer = announcer
        self._queue = queue
        self._queries = queries
        self._cdn = cdn
        self._grace = grace
        self._processing_deadline = processing_deadline
        # The processor publishes right after the transition; relaying only older entries
        # keeps the sweep from racing it into a second delivery.
        self._relay_delay = relay_delay
        self._clock = clock
        self._metrics = metrics

    def run(self, limit_per_partition: int = 200) -> SweepReport:
        report = SweepReport()
        now = self._clock()
        for shard, partition in enumerate(sweep_partitions()):
            try:
                due = self._images.due_for_sweep(partition, format_time(now), limit_per_partition)
            except Exception:
                report.errors += 1
                logs.error("could not read a sweep partition; the next run tries again", exc_info=True, shard=shard)
                continue
            for record in due:
                with logs.log_context(imageId=record.id, userId=record.user_id):
                    try:
                        self._sweep_one(record, now, report)
                    except Exception:
                        report.errors += 1
                        logs.error("could not sweep a record; the next run tries again", exc_info=True)
        done = {name: count for name, count in vars(report).items() if count and name != "not_yet"}
        if done:
            logs.info("sweep finished", **done)
        if report.errors:
            raise SweepIncomplete(f"{report.errors} record(s) could not be swept")
        return report

    def _sweep_one(self, record: ImageRecord, now: datetime, report: SweepReport) -> None:
        if record.deleted_at is not None:
            # A DELETE that stopped after its tombstone (the owner saw a 5xx, or nothing).
            finish_deletion(record, self._store, self._cdn, self._queries, self._duplicates)
            logs.warning("finished a delete that stopped half-way")
            report.deletes_finished += 1
            return
        if record.status is ImageStatus.PENDING:
            settled = self._settle_pending(record, now, report)
            if settled is None:
                return
            record = settled
        elif record.status is ImageStatus.PROCESSING:
            try:
                record = self._images.fail_stalled(
                    record.id, event_id_for(record.id, ImageStatus.FAILED), now=format_time(now)
                )
            except ConditionFailed:
                report.not_yet += 1  # a delivery finished it, or started again, meanwhile
                return
            logs.warning("no delivery finished processing the image before its deadline; failed")
            self._metrics.emit("ProcessingFailures", 1, Reason=STALLED_CODE)
            report.failed += 1
        elif parse_time(record.event_occurred_at or record.updated_at) > now - self._relay_delay:
            report.not_yet += 1  # the processor is publishing it right now
            return
        report.announced += self._announcer.announce(record)

    def _settle_pending(self, record: ImageRecord, now: datetime, report: SweepReport) -> ImageRecord | None:
        """Expire an abandoned upload (returned, to announce), or resubmit an unprocessed one."""
        # An upload that started just before its window closed may still be arriving.
        closed_before = now - self._grace
        if record.upload_expires_at is None or parse_time(record.upload_expires_at) >= closed_before:
            report.not_yet += 1
            return None
        if self._store.upload_size(record.upload_key) is not None:
            # The file arrived in time; only its processing is missing. Never expire it.
            self._queue.resubmit(self._store.upload_bucket, record.upload_key)
            with contextlib.suppress(ConditionFailed):  # processing started meanwhile: it has a deadline
                self._images.postpone_sweep(record.id, format_time(now + self._processing_deadline))
            logs.warning("upload arrived but was never processed; handed back to the queue")
            self._metrics.emit("UploadsResubmitted", 1)
            report.resubmitted += 1
            return None
        expired = self._expire(record, closed_before, now)
        if expired is None:
            report.not_yet += 1
            return None
        report.expired += 1
        return expired

    def _expire(self, record: ImageRecord, closed_before: datetime, now: datetime) -> ImageRecord | None:
        try:
            expired = self._images.expire(
                record.id,
                event_id_for(record.id, ImageStatus.EXPIRED),
                closed_before=format_time(closed_before),
                now=format_time(now),
            )
        except ConditionFailed:
            return None  # the upload arrived meanwhile
        # Nothing can arrive any more (the form expired a grace period ago): drop any stray copy.
        self._store.delete_upload(expired.upload_key)
        logs.info("abandoned upload expired")
        self._metrics.emit("UploadsExpired", 1)
        return expired
