"""A hypothesis state machine over create, upload, deliver, duplicate, crash, sweep (at once
or later), poll, patch and delete, driving the real services (``UploadService``,
``ProcessingService``, ``ImageService``, ``Sweeper``) on two backends (``tests/contract``):
the in-memory fakes, and the real adapters on moto. After every step it checks:

* a status only moves forward, and a terminal status never changes;
* each image has at most one logical event: one distinct eventId, every delivery identical,
  and it is the event of the record's terminal transition;
* a record that says its event was published has had it published;
* a completed live image has its rendition and thumbnail; a deleted one has no objects;
* one Idempotency-Key never makes two images;
* only the owner reads, patches or deletes; versions move by one per accepted patch.

At the end of every run, one clean redelivery of each uploaded image (and one sweep) must
leave each live uploaded image terminal with exactly one logical event, and (on moto) the
events SNS delivered to a subscriber must be exactly the ones published.

The same machine on both backends: a difference between a fake and the real adapter in
any transition it reaches (the sweep index included) fails one run and not the other.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any

import pytest
from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import (
    RuleBasedStateMachine,
    initialize,
    invariant,
    precondition,
    rule,
    run_state_machine_as_test,
)

from chalicelib.errors import Forbidden, NotFound, VersionConflict
from chalicelib.models.common import ImageStatus
from chalicelib.models.domain import ImageRecord
from chalicelib.models.requests import CreateImageRequest, UpdateImageRequest
from chalicelib.models.responses import ImageEvent
from chalicelib.services.announcer import EventAnnouncer
from chalicelib.services.cursors import CursorCodec
from chalicelib.services.images import ImageService
from chalicelib.services.presenter import Presenter
from chalicelib.services.processing import ProcessingService, UploadedObject
from chalicelib.services.sweeper import Sweeper
from chalicelib.services.uploads import UploadService
from tests.contract.backends import BACKENDS, Backend, FakeBackend, MotoBackend, MotoStage, moto_stage
from tests.reliability.faults import SimulatedCrash
from tests.unit.fakes import CDN, Clock, FakeProcessor, Ids

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
# How long before a sweep: at once, after upload windows closed (15 min + 5 min grace),
# after processing deadlines passed (1 h). The clock stops moving on well before an
# Idempotency-Key (48 h) could expire.
LATER = (timedelta(0), timedelta(minutes=25), timedelta(minutes=70))
MAX_ELAPSED = timedelta(hours=12)


@dataclass
class CrashPoints:
    """Where the next delivery dies: right after the named call took effect."""

    armed: str | None = None

    def reached(self, point: str) -> None:
        if self.armed == point:
            self.armed = None
            raise SimulatedCrash(point)


def _crash_after(target: object, method: str, crashes: CrashPoints, point: Callable[..., str]) -> None:
    """Make ``target.method`` reach the crash point ``point(*args)`` once it has returned.

    The instance's method is replaced (not the class's), so the fakes and the real
    adapters get the same crash points and nothing else changes."""
    original = getattr(target, method)

    def crashing(*args: Any, **kwargs: Any) -> Any:
        result = original(*args, **kwargs)
        crashes.reached(point(*args))
        return result

    setattr(target, method, crashing)


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
    def __init__(self, backend: Backend) -> None:
        super().__init__()
        self.backend = backend
        self.clock = Clock()
        self.started = self.clock.now
        self.settings = backend.settings
        self.presenter = Presenter(CDN)
        self.crashes = CrashPoints()
        self.published: list[ImageEvent] = []
        images, store, publisher = backend.images, backend.store, backend.publisher
        _crash_after(images, "start_processing", self.crashes, lambda *_: "start")
        _crash_after(images, "finish_processing", self.crashes, lambda *_: "finish")
        _crash_after(images, "mark_event_published", self.crashes, lambda *_: "mark")
        _crash_after(
            store, "write_image", self.crashes, lambda key, *_: "thumbnail" if "thumbnail" in key else "rendition"
        )
        _crash_after(publisher, "publish", self.crashes, self._record_publish)
        self.uploads = UploadService(images, store, self.settings, clock=self.clock, new_id=Ids())
        self.processing = self._processor()
        cursors = CursorCodec(self.settings.cursor_secret)
        self.images = ImageService(images, backend.queries, store, lambda: cursors, None, clock=self.clock)
        self.sweeper = Sweeper(
            images,
            store,
            EventAnnouncer(images, publisher, self.presenter),
            backend.queue,
            grace=timedelta(minutes=5),
            processing_deadline=timedelta(hours=1),
            queries=backend.queries,
            relay_delay=timedelta(0),
            clock=self.clock,
        )
        self.known: dict[str, Known] = {}
        self.by_key: dict[tuple[str, str], str] = {}

    # -- helpers -------------------------------------------------------------------

    def _record_publish(self, event: ImageEvent) -> str:
        self.published.append(event)  # the publish returned: subscribers have it
        return "publish"

    def _processor(self) -> ProcessingService:
        return ProcessingService(
            self.backend.images,
            self.backend.store,
            self.backend.publisher,
            self.presenter,
            self.settings,
            processor=FakeProcessor(),
            clock=self.clock,
        )

    def _restart_after_crash(self) -> None:
        """A crashed Lambda's container is gone: nothing it started finishes later.

        The other rendition write cannot be killed mid-flight here, so let it finish now
        (before the next step) and continue with a new service, as a new container would.
        """
        self.processing._writers.shutdown(wait=True)
        self.processing = self._processor()

    def _pick(self, data: st.DataObject, uploaded: bool = False) -> str:
        ids = sorted(i for i, k in self.known.items() if not k.deleted and (k.uploaded or not uploaded))
        return str(data.draw(st.sampled_from(ids)))

    def _deliver(self, image_id: str) -> None:
        self.processing.handle_object(UploadedObject(self.settings.upload_bucket, self.known[image_id].upload_key))

    def _has_live(self, uploaded: bool = False) -> bool:
        return any(not k.deleted and (k.uploaded or not uploaded) for k in self.known.values())

    # -- rules ---------------------------------------------------------------------

    @initialize()
    def an_upload_to_begin_with(self) -> None:
        """Every run starts with one uploaded image, so more of each run processes one."""
        self.create("alice", None)
        [image_id] = self.known
        self.backend.put_upload(self.known[image_id].upload_key, GOOD)
        self.known[image_id].uploaded = True

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
        self.backend.put_upload(known.upload_key, GOOD * 8 if oversized else GOOD)
        known.uploaded = True

    @precondition(lambda self: self._has_live(uploaded=True))
    @rule(data=st.data(), copies=st.integers(1, 3))
    def deliver(self, data: st.DataObject, copies: int) -> None:
        """The upload's event, and 0-2 duplicates of it."""
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
        self.crashes.armed = point
        try:
            self._deliver(image_id)
        except SimulatedCrash:
            self._restart_after_crash()
        finally:  # a crash point the delivery never reached is disarmed
            self.crashes.armed = None

    @rule(later=st.sampled_from(LATER))
    def sweep(self, later: timedelta) -> None:
        """The scheduled sweep, ``later`` (time passes: upload windows close, processing
        deadlines pass), then the queue delivering what the sweep handed back to it."""
        if self.clock.now - self.started < MAX_ELAPSED:
            self.clock.advance(seconds=later.total_seconds())
        self.clock.advance(seconds=1)
        self.sweeper.run()
        for obj in self.backend.resubmitted():
            self.processing.handle_object(obj)

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
        return [e for e in self.published if e.image.id == image_id]

    @invariant()
    def holds(self) -> None:
        """Every invariant, on one read of the table and the buckets per step."""
        records = self.backend.image_records()
        self._statuses_only_move_forward_and_terminal_ones_never_change(records)
        self._each_image_has_at_most_one_logical_event(records)
        self._completed_live_images_have_their_outputs_and_deleted_ones_have_none(records)
        self._one_idempotency_key_never_makes_two_images(records)

    def _statuses_only_move_forward_and_terminal_ones_never_change(self, records: dict[str, ImageRecord]) -> None:
        for image_id, known in self.known.items():
            record = records.get(image_id)
            if record is None:
                assert known.deleted, f"{image_id} vanished without a delete"
                continue
            assert RANK[record.status] >= known.highest, (image_id, record.status, known.highest)
            known.highest = RANK[record.status]
            if record.status.is_terminal:
                assert known.terminal in (None, record.status), (image_id, known.terminal, record.status)
                known.terminal = record.status

    def _each_image_has_at_most_one_logical_event(self, records: dict[str, ImageRecord]) -> None:
        for image_id, known in self.known.items():
            events = self._events(image_id)
            assert len({e.event_id for e in events}) <= 1, [e.event_id for e in events]
            assert len({e.model_dump_json() for e in events}) <= 1, "deliveries of one event differ"
            record = records.get(image_id)
            terminal = record.status if record is not None else known.terminal
            if events:
                assert terminal is not None and events[0].type == f"image.{terminal.value}", (terminal, events)
            if record is not None and record.event_published:
                assert events and events[0].event_id == record.event_id

    def _completed_live_images_have_their_outputs_and_deleted_ones_have_none(
        self, records: dict[str, ImageRecord]
    ) -> None:
        completed = [r for r in records.values() if r.status is ImageStatus.COMPLETED and r.deleted_at is None]
        gone = [(i, k) for i, k in self.known.items() if k.deleted and i not in records]
        if not completed and not gone:
            return
        images, uploads = self.backend.image_keys(), self.backend.upload_keys()
        for record in completed:
            assert record.rendition_key in images and record.thumbnail_key in images, record.id
        for image_id, known in gone:
            assert known.upload_key not in uploads, image_id
            prefix = f"images/{known.user}/"
            assert not [k for k in images if k.startswith(prefix) and image_id in k], image_id

    def _one_idempotency_key_never_makes_two_images(self, records: dict[str, ImageRecord]) -> None:
        per_key: dict[tuple[str, str], set[str]] = {}
        for record in records.values():
            known = self.known[record.id]
            if known.key is not None:
                per_key.setdefault((known.user, known.key), set()).add(record.id)
        assert all(len(ids) == 1 for ids in per_key.values()), per_key

    def teardown(self) -> None:
        # One clean redelivery of every live upload and one sweep: everything settles.
        for image_id, known in self.known.items():
            if known.uploaded and not known.deleted:
                self._deliver(image_id)
        self.sweep(timedelta(0))
        records = self.backend.image_records()
        for image_id, known in self.known.items():
            record = records.get(image_id)
            if not known.uploaded or known.deleted or record is None:
                continue
            assert record.status.is_terminal, (image_id, record.status)
            assert record.event_published
            events = self._events(image_id)
            assert len({e.event_id for e in events}) == 1
            assert len({e.model_dump_json() for e in events}) == 1
        # What subscribers received is what the publisher says it published.
        delivered = sorted(e.model_dump_json() for e in self.backend.delivered_events())
        assert delivered == sorted(e.model_dump_json() for e in self.published)
        self.processing._writers.shutdown(wait=True)


# Bounded and derandomised (the same runs every time); STATEFUL_PROFILE=deep explores
# ten times as many random runs, for a soak before a release.
_DEEP = os.environ.get("STATEFUL_PROFILE") == "deep"
_COMMON: dict[str, Any] = {
    "deadline": None,
    "derandomize": not _DEEP,
    "suppress_health_check": [HealthCheck.too_slow, HealthCheck.filter_too_much],
}
ON_FAKES = settings(max_examples=1500 if _DEEP else 150, stateful_step_count=30, **_COMMON)
ON_MOTO = settings(max_examples=200 if _DEEP else 20, stateful_step_count=25, **_COMMON)


class OnFakes(ImagePipeline):
    def __init__(self) -> None:
        super().__init__(FakeBackend())


def test_the_pipeline_on_the_fakes() -> None:
    run_state_machine_as_test(OnFakes, settings=ON_FAKES)


@pytest.fixture
def stage() -> Iterator[MotoStage]:
    with moto_stage() as provisioned:
        yield provisioned


def test_the_pipeline_on_moto(stage: MotoStage) -> None:
    class OnMoto(ImagePipeline):
        def __init__(self) -> None:
            backend = MotoBackend(stage)  # new adapters (the machine arms crash points on them)
            backend.reset()  # an empty stage for each run
            super().__init__(backend)

    run_state_machine_as_test(OnMoto, settings=ON_MOTO)


@pytest.fixture(params=BACKENDS)
def pipeline(request: pytest.FixtureRequest) -> Iterator[ImagePipeline]:
    if request.param == "fake":
        yield ImagePipeline(FakeBackend())
        return
    with moto_stage() as provisioned:
        yield ImagePipeline(MotoBackend(provisioned))


def test_every_branch_of_the_sweep_through_the_machine(pipeline: ImagePipeline) -> None:
    """One fixed run through the machine's rules that reaches each transition the random
    runs may or may not reach, on both backends, the invariants checked after each step."""
    machine = pipeline

    def step(rule: Callable[..., object], *args: object) -> None:
        rule(*args)
        machine.holds()

    def newest() -> str:
        return max(machine.known)

    step(machine.an_upload_to_begin_with)  # alice's image, uploaded, its notification lost
    [notification_lost] = machine.known
    step(machine.create, "bob", "key-1")  # never uploaded
    abandoned = newest()
    step(machine.sweep, timedelta(minutes=25))  # both windows closed: expire one, resubmit the other
    for user in ("alice", "bob"):
        step(machine.create, user, None)
        machine.known[newest()].uploaded = True
        machine.backend.put_upload(machine.known[newest()].upload_key, GOOD)
    stalled, republished = sorted(machine.known)[-2:]
    machine.crashes.armed = "start"
    with pytest.raises(SimulatedCrash):
        machine._deliver(stalled)
    machine._restart_after_crash()
    machine.crashes.armed = "publish"  # the event went out, the record does not say so
    with pytest.raises(SimulatedCrash):
        machine._deliver(republished)
    machine._restart_after_crash()
    step(machine.sweep, timedelta(minutes=70))  # past the deadline: fail one; relay the other
    step(machine.create, "alice", "key-1")
    deleted = newest()
    machine.backend.put_upload(machine.known[deleted].upload_key, GOOD)
    machine.known[deleted].uploaded = True
    step(machine._deliver, deleted)
    step(machine._deliver, deleted)  # a duplicate
    machine.images.delete("alice", deleted)
    machine.known[deleted].deleted = True
    machine.holds()
    step(machine._deliver, deleted)  # a late copy of its notification
    machine.teardown()

    records = machine.backend.image_records()
    outcome = {i: (r.status.value, r.error_code, r.event_published) for i, r in records.items()}
    assert outcome == {
        notification_lost: ("completed", None, True),
        abandoned: ("expired", "upload_expired", True),
        stalled: ("failed", "processing_failed", True),
        republished: ("completed", None, True),
    }
    events = {(e.image.id, e.type) for e in machine.published}
    assert events == {
        (notification_lost, "image.completed"),
        (abandoned, "image.expired"),
        (stalled, "image.failed"),
        (republished, "image.completed"),
        (deleted, "image.completed"),
    }
    assert len(machine._events(republished)) == 2  # the same event, published twice
    assert deleted not in records and not [k for k in machine.backend.image_keys() if deleted in k]
