"""A hypothesis state machine over create, upload, deliver, duplicate, crash, relay, poll,
patch and delete, on the in-memory fakes, checking the invariants after every step:

* a status only moves forward, and a terminal status never changes;
* each image has at most one logical event: one distinct eventId, every delivery identical,
  and it is the event of the record's terminal transition;
* a record that says its event was published has had it published;
* a completed live image has its rendition and thumbnail; a deleted one has no objects;
* one Idempotency-Key never makes two images;
* only the owner reads, patches or deletes; versions move by one per accepted patch.

At the end of every run, one clean redelivery of each uploaded image (and one relay sweep)
must leave each live uploaded image terminal with exactly one logical event.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any

from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, invariant, precondition, rule

from chalicelib.errors import Forbidden, NotFound, VersionConflict
from chalicelib.models.common import ImageStatus
from chalicelib.models.domain import ImageRecord, ProcessingOutcome
from chalicelib.models.requests import CreateImageRequest, UpdateImageRequest
from chalicelib.models.responses import ImageEvent
from chalicelib.repositories.images import ImageQueries, Page, WriteRejected
from chalicelib.services.announcer import EventAnnouncer
from chalicelib.services.images import ImageService
from chalicelib.services.presenter import Presenter
from chalicelib.services.processing import ProcessingService, UploadedObject
from chalicelib.services.sweeper import Sweeper
from chalicelib.services.uploads import UploadService
from tests.reliability.faults import SimulatedCrash
from tests.unit.fakes import (
    CDN,
    UPLOAD_BUCKET,
    Clock,
    FakeImageRepository,
    FakeObjectStore,
    FakeProcessor,
    FakePublisher,
    FakeUploadQueue,
    Ids,
    unit_settings,
)

USERS = ("alice", "bob")
KEYS = (None, "key-1", "key-2")
GOOD = b"\xff\xd8\xff\xe0 a pretend jpeg \xff\xd9"
RANK = {
    ImageStatus.PENDING: 0,
    ImageStatus.PROCESSING: 1,
    ImageStatus.COMPLETED: 2,
    ImageStatus.FAILED: 2,
    ImageStatus.EXPIRED: 2,
}
CRASH_POINTS = ("start", "rendition", "thumbnail", "finish", "publish", "mark")


class CrashableRepository(FakeImageRepository):
    """The fake repository, with a crash point, the metadata writes and the sweep index."""

    crash_at: str | None = None

    def start_processing(self, image_id: str, now: str, deadline: str) -> ImageRecord:
        record = super().start_processing(image_id, now, deadline)
        self._maybe_crash("start")
        return record

    def finish_processing(self, image_id: str, outcome: ProcessingOutcome, event_id: str, now: str) -> ImageRecord:
        record = super().finish_processing(image_id, outcome, event_id, now)
        self._maybe_crash("finish")
        return record

    def mark_event_published(self, image_id: str, event_id: str) -> None:
        super().mark_event_published(image_id, event_id)
        self._maybe_crash("mark")

    def _maybe_crash(self, point: str) -> None:
        if self.crash_at == point:
            self.crash_at = None
            raise SimulatedCrash(point)

    def due_for_sweep(self, partition: str, now: str, limit: int) -> list[ImageRecord]:
        # The real index holds terminal records until their event is marked published.
        if partition != "SWEEP#0":
            return []
        with self._lock:
            due = [r for r in self.records.values() if r.status.is_terminal and not r.event_published]
        return due[:limit]


class FakeQueries(ImageQueries):
    """Metadata writes over the same records, with the same conditions as DynamoDB's."""

    def __init__(self, repository: CrashableRepository) -> None:
        self._repository = repository

    def list_for_user(self, user_id: str, limit: int, start: dict[str, Any] | None, album_id: str | None) -> Page:
        records = [r for r in self._repository.records.values() if r.user_id == user_id and r.deleted_at is None]
        return Page(records=records[:limit], last_key=None)

    def update_metadata(
        self, image_id: str, user_id: str, changes: Mapping[str, Any], expected_version: int, now: str
    ) -> ImageRecord:
        repo = self._repository
        with repo._lock:
            current = repo.records.get(image_id)
            if (
                current is None
                or current.deleted_at is not None
                or current.user_id != user_id
                or current.version != expected_version
            ):
                raise WriteRejected(current)
            updated = current.model_copy(update={**changes, "version": current.version + 1, "updated_at": now})
            repo.records[image_id] = updated
            return updated

    def begin_delete(self, image_id: str, user_id: str, now: str) -> ImageRecord:
        repo = self._repository
        with repo._lock:
            current = repo.records.get(image_id)
            if current is None or current.user_id != user_id:
                raise WriteRejected(current)
            updated = current.model_copy(update={"deleted_at": current.deleted_at or now})
            repo.records[image_id] = updated
            return updated

    def finish_delete(self, image_id: str) -> None:
        repo = self._repository
        with repo._lock:
            current = repo.records.get(image_id)
            if current is not None and current.deleted_at is not None:
                del repo.records[image_id]


class CrashableStore(FakeObjectStore):
    crash_at: str | None = None

    def write_image(self, key: str, data: bytes) -> None:
        super().write_image(key, data)
        kind = "thumbnail" if "/thumbnails/" in key else "rendition"
        if self.crash_at == kind:
            self.crash_at = None
            raise SimulatedCrash(kind)


@dataclass
class CrashablePublisher(FakePublisher):
    crash_after: bool = False

    def publish(self, event: ImageEvent) -> None:
        super().publish(event)
        if self.crash_after:
            self.crash_after = False
            raise SimulatedCrash("publish")


@dataclass
class Known:
    """What the model knows of one created image."""

    user: str
    key: str | None
    upload_key: str
    uploaded: bool = False
    deleted: bool = False
    version: int = 1
    highest: int = 0
    terminal: ImageStatus | None = None
    ids: list[str] = field(default_factory=list)


class ImagePipeline(RuleBasedStateMachine):
    def __init__(self) -> None:
        super().__init__()
        self.clock = Clock()
        self.repo = CrashableRepository()
        self.store = CrashableStore()
        self.publisher = CrashablePublisher()
        self.settings = unit_settings()
        self.presenter = presenter = Presenter(CDN)
        self.uploads = UploadService(self.repo, self.store, self.settings, clock=self.clock, new_id=Ids())
        self.processing = self._processor()
        self.images = ImageService(self.repo, FakeQueries(self.repo), self.store, lambda: None, None, clock=self.clock)  # type: ignore[arg-type,return-value]
        self.sweeper = Sweeper(
            self.repo,
            self.store,
            EventAnnouncer(self.repo, self.publisher, presenter),
            FakeUploadQueue(),
            grace=timedelta(minutes=5),
            processing_deadline=timedelta(hours=1),
            queries=FakeQueries(self.repo),
            relay_delay=timedelta(0),
            clock=self.clock,
        )
        self.known: dict[str, Known] = {}
        self.by_key: dict[tuple[str, str], str] = {}

    # -- helpers -------------------------------------------------------------------

    def _processor(self) -> ProcessingService:
        return ProcessingService(
            self.repo,
            self.store,
            self.publisher,
            self.presenter,
            self.settings,
            processor=FakeProcessor(),
            clock=self.clock,
        )

    def _restart_after_crash(self) -> None:
        """A crashed Lambda's container is gone: nothing it started finishes later.

        The fakes cannot kill the other rendition write mid-flight, so let it finish now
        (before the next step) and continue with a new service, as a new container would.
        """
        self.processing._writers.shutdown(wait=True)
        self.processing = self._processor()

    def _pick(self, data: st.DataObject, uploaded: bool = False) -> str:
        ids = sorted(i for i, k in self.known.items() if not k.deleted and (k.uploaded or not uploaded))
        return str(data.draw(st.sampled_from(ids)))

    def _deliver(self, image_id: str) -> None:
        self.processing.handle_object(UploadedObject(UPLOAD_BUCKET, self.known[image_id].upload_key))

    def _has_live(self, uploaded: bool = False) -> bool:
        return any(not k.deleted and (k.uploaded or not uploaded) for k in self.known.values())

    # -- rules ---------------------------------------------------------------------

    @rule(user=st.sampled_from(USERS), key=st.sampled_from(KEYS))
    def create(self, user: str, key: str | None) -> None:
        request = CreateImageRequest.model_validate({"filename": "a.jpg", "contentType": "image/jpeg", "size": 64})
        try:
            ticket = self.uploads.create(user, request, key)
        except NotFound:
            # The key's image was deleted: the key stays taken, no new image.
            assert key is not None and self.known[self.by_key[(user, key)]].deleted
            return
        image_id = ticket.record.id
        if key is not None and (user, key) in self.by_key:
            assert ticket.replayed and image_id == self.by_key[(user, key)], "one key made two images"
            return
        assert not ticket.replayed
        self.known[image_id] = Known(user=user, key=key, upload_key=f"uploads/{user}/{image_id}")
        if key is not None:
            self.by_key[(user, key)] = image_id

    @precondition(lambda self: self._has_live())
    @rule(data=st.data(), oversized=st.booleans())
    def upload(self, data: st.DataObject, oversized: bool) -> None:
        image_id = self._pick(data)
        known = self.known[image_id]
        # More bytes than declared (64) ends as failed/size_mismatch.
        self.store.uploads[known.upload_key] = GOOD * 8 if oversized else GOOD
        known.uploaded = True

    @precondition(lambda self: self._has_live(uploaded=True))
    @rule(data=st.data(), copies=st.integers(1, 3))
    def deliver(self, data: st.DataObject, copies: int) -> None:
        image_id = self._pick(data, uploaded=True)
        for _ in range(copies):
            self._deliver(image_id)

    @precondition(lambda self: any(k.uploaded for k in self.known.values()))
    @rule(data=st.data())
    def deliver_late(self, data: st.DataObject) -> None:
        """A stale copy of any upload's notification, also of a deleted image."""
        image_id = str(data.draw(st.sampled_from(sorted(i for i, k in self.known.items() if k.uploaded))))
        self._deliver(image_id)

    @precondition(lambda self: self._has_live(uploaded=True))
    @rule(data=st.data(), point=st.sampled_from(CRASH_POINTS))
    def crash(self, data: st.DataObject, point: str) -> None:
        image_id = self._pick(data, uploaded=True)
        if point in ("rendition", "thumbnail"):
            self.store.crash_at = point
        elif point == "publish":
            self.publisher.crash_after = True
        else:
            self.repo.crash_at = point
        try:
            self._deliver(image_id)
        except SimulatedCrash:
            self._restart_after_crash()
        finally:  # a crash point the delivery never reached is disarmed
            self.store.crash_at = self.repo.crash_at = None
            self.publisher.crash_after = False

    @rule()
    def relay(self) -> None:
        self.clock.advance(seconds=1)
        self.sweeper.run()

    @precondition(lambda self: bool(self.known))
    @rule(data=st.data(), user=st.sampled_from(USERS))
    def poll(self, data: st.DataObject, user: str) -> None:
        image_id = str(data.draw(st.sampled_from(sorted(self.known))))
        known = self.known[image_id]
        try:
            record = self.images.get(user, image_id)
        except NotFound:
            assert known.deleted
            return
        except Forbidden:
            assert user != known.user and not known.deleted
            return
        assert user == known.user and not known.deleted
        assert record.version == known.version

    @precondition(lambda self: self._has_live())
    @rule(data=st.data(), user=st.sampled_from(USERS), stale=st.booleans())
    def patch(self, data: st.DataObject, user: str, stale: bool) -> None:
        image_id = self._pick(data)
        known = self.known[image_id]
        version = known.version - 1 if stale and known.version > 1 else known.version
        request = UpdateImageRequest.model_validate({"title": f"v{version}", "version": version})
        try:
            record = self.images.update(user, image_id, request, None)
        except Forbidden:
            assert user != known.user
            return
        except VersionConflict:
            assert user == known.user and version != known.version
            return
        assert user == known.user and version == known.version
        assert record.version == known.version + 1
        known.version = record.version

    @precondition(lambda self: self._has_live())
    @rule(data=st.data(), user=st.sampled_from(USERS))
    def delete(self, data: st.DataObject, user: str) -> None:
        image_id = self._pick(data)
        known = self.known[image_id]
        try:
            self.images.delete(user, image_id)
        except Forbidden:
            assert user != known.user
            return
        assert user == known.user
        known.deleted = True

    # -- invariants ----------------------------------------------------------------

    def _events(self, image_id: str) -> list[ImageEvent]:
        return [e for e in self.publisher.published if e.image.id == image_id]

    @invariant()
    def statuses_only_move_forward_and_terminal_ones_never_change(self) -> None:
        for image_id, known in self.known.items():
            record = self.repo.records.get(image_id)
            if record is None:
                assert known.deleted, f"{image_id} vanished without a delete"
                continue
            assert RANK[record.status] >= known.highest, (image_id, record.status, known.highest)
            known.highest = RANK[record.status]
            if record.status.is_terminal:
                assert known.terminal in (None, record.status), (image_id, known.terminal, record.status)
                known.terminal = record.status

    @invariant()
    def each_image_has_at_most_one_logical_event(self) -> None:
        for image_id, known in self.known.items():
            events = self._events(image_id)
            assert len({e.event_id for e in events}) <= 1, [e.event_id for e in events]
            assert len({e.model_dump_json() for e in events}) <= 1, "deliveries of one event differ"
            record = self.repo.records.get(image_id)
            terminal = record.status if record is not None else known.terminal
            if events:
                assert terminal is not None and events[0].type == f"image.{terminal.value}", (terminal, events)
            if record is not None and record.event_published:
                assert events and events[0].event_id == record.event_id

    @invariant()
    def completed_live_images_have_their_outputs_and_deleted_ones_have_none(self) -> None:
        for image_id, known in self.known.items():
            record = self.repo.records.get(image_id)
            if record is not None and record.status is ImageStatus.COMPLETED and record.deleted_at is None:
                assert record.rendition_key in self.store.images and record.thumbnail_key in self.store.images
            if known.deleted and record is None:
                assert known.upload_key not in self.store.uploads
                prefix = f"images/{known.user}/"
                assert not [k for k in self.store.images if k.startswith(prefix) and image_id in k], image_id

    @invariant()
    def one_idempotency_key_never_makes_two_images(self) -> None:
        per_key: dict[tuple[str, str], set[str]] = {}
        for record in self.repo.records.values():
            known = self.known[record.id]
            if known.key is not None:
                per_key.setdefault((known.user, known.key), set()).add(record.id)
        assert all(len(ids) == 1 for ids in per_key.values()), per_key

    def teardown(self) -> None:
        # One clean redelivery of every live upload and one relay: everything settles.
        for image_id, known in self.known.items():
            if known.uploaded and not known.deleted:
                self._deliver(image_id)
        self.relay()
        for image_id, known in self.known.items():
            record = self.repo.records.get(image_id)
            if not known.uploaded or known.deleted or record is None:
                continue
            assert record.status.is_terminal, (image_id, record.status)
            assert record.event_published
            events = self._events(image_id)
            assert len({e.event_id for e in events}) == 1
            assert len({e.model_dump_json() for e in events}) == 1


TestImagePipeline = ImagePipeline.TestCase
TestImagePipeline.settings = settings(
    max_examples=150,
    stateful_step_count=30,
    deadline=None,
    derandomize=True,
    suppress_health_check=[HealthCheck.too_slow],
)
