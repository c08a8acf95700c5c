"""Load test of the local stack: N concurrent clients through create -> S3 POST -> poll.

    python scripts/loadtest.py --clients 100 --start-stack
    python scripts/loadtest.py --clients 200 --images-per-client 1 --start-stack --json
    python scripts/loadtest.py --clients 50 --api http://127.0.0.1:8000
    python scripts/loadtest.py --clients 200 --image-size 1024x768 --poll-interval 0.05 --start-stack

Each client creates its images with an ``Idempotency-Key`` (and sends the create twice,
as a client retrying a lost answer would), uploads a small generated JPEG (800x600 by
default, so the two-core test machine measures the pipeline rather than one large
encode) with the presigned form, and polls ``GET /images/{id}/status`` until the image
is terminal (0.1 s doubling to ``--poll-max``, or every ``--poll-interval`` seconds:
a burst of impatient clients). A webhook receiver subscribed through ``POST /webhooks`` collects the
``image.*`` events of the run's user.

Reported: throughput, p50/p95/p99 per phase (create, upload, upload-to-completed), and
the count of lost images (never terminal within ``--timeout``) and duplicated ones (more
than one image per idempotency key, or more than one distinct completed event per image).

Bounded: every loop has a count and a deadline, and only 127.0.0.1/localhost is targeted.
"""

from __future__ import annotations

import argparse
import io
import json
import statistics
import sys
import threading
import time
import uuid
from collections import Counter, defaultdict
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import ExitStack, contextmanager
from dataclasses import asdict, dataclass, field
from typing import Any
from urllib.parse import urlsplit

import requests
from PIL import Image

from chalicelib.auth import mint_local_token
from infra.stage_config import LOCAL_STAGE, stage_environment

LOOPBACK = frozenset({"127.0.0.1", "localhost", "::1"})
TERMINAL = frozenset({"completed", "failed", "expired"})
PHASES = ("create", "upload", "upload_to_completed")


class NotLoopback(ValueError):
    """The load test only ever targets this machine."""


def require_loopback(url: str) -> str:
    host = urlsplit(url).hostname or ""
    if host not in LOOPBACK:
        raise NotLoopback(f"refusing to load {url!r}: only 127.0.0.1/localhost is allowed")
    return url.rstrip("/")


def jpeg(width: int, height: int, seed: int) -> bytes:
    """A small generated JPEG with a gradient, different per seed."""
    image = Image.new("RGB", (width, height), (seed * 37 % 256, 90, 160))
    step = max(1, width // 32)
    for x in range(0, width, step):
        image.paste(((x * 255 // width + seed) % 256, (seed * 11) % 256, 200 - x * 150 // width), (x, 0, x + 4, height))
    buffer = io.BytesIO()
    image.save(buffer, "JPEG", quality=85)
    return buffer.getvalue()


def token_for(user_id: str) -> str:
    environment = stage_environment(LOCAL_STAGE)
    return mint_local_token(
        environment["LOCAL_JWT_SECRET"],
        user_id,
        issuer=environment["JWT_ISSUER"],
        audience=environment["JWT_AUDIENCE"],
        ttl_seconds=4 * 3600,
    )


@dataclass
class ImageRun:
    """What one client observed for one image."""

    key: str
    image_id: str | None = None
    replay_id: str | None = None
    status: str | None = None
    create_s: float | None = None
    upload_s: float | None = None
    upload_to_completed_s: float | None = None
    polls: int = 0
    poll_errors: int = 0
    error: str | None = None


@dataclass
class Percentiles:
    count: int
    p50_ms: float | None
    p95_ms: float | None
    p99_ms: float | None
    max_ms: float | None


@dataclass
class Report:
    clients: int
    images_per_client: int
    image_bytes: int
    image_size: str
    wall_s: float
    throughput_per_s: float
    statuses: dict[str, int]
    phases: dict[str, Percentiles]
    lost: int
    duplicated_images: int
    duplicated_events: int
    replay_mismatches: int
    events_received: int
    distinct_event_ids: int
    redelivered_events: int
    poll_errors: int
    client_requests_per_image: dict[str, float]
    errors: list[str] = field(default_factory=list)


def percentiles(samples: list[float]) -> Percentiles:
    if not samples:
        return Percentiles(0, None, None, None, None)
    ordered = sorted(samples)

    def at(q: float) -> float:
        # nearest-rank percentile
        index = max(0, min(len(ordered) - 1, int(-(-q * len(ordered) // 100)) - 1))
        return round(ordered[index] * 1000, 1)

    return Percentiles(len(ordered), at(50), at(95), at(99), round(ordered[-1] * 1000, 1))


class Client:
    def __init__(self, api_url: str, token: str, timeout: float) -> None:
        self._api = api_url
        self._headers = {"Authorization": f"Bearer {token}"}
        self._timeout = timeout
        self._session = requests.Session()

    def create(self, key: str, size: int) -> dict[str, Any]:
        body = {"filename": f"{key}.jpg", "contentType": "image/jpeg", "size": size, "title": key}
        response = self._session.post(
            f"{self._api}/images",
            json=body,
            headers={**self._headers, "Idempotency-Key": key},
            timeout=self._timeout,
        )
        if response.status_code not in (200, 201):
            raise RuntimeError(f"create answered {response.status_code}: {response.text[:200]}")
        created: dict[str, Any] = response.json()
        return created

    def upload(self, created: dict[str, Any], data: bytes) -> None:
        form = created["upload"]
        url = require_loopback(form["url"])
        files = {"file": ("upload.jpg", data, form["fields"].get("Content-Type", "image/jpeg"))}
        response = self._session.post(url, data=list(form["fields"].items()), files=files, timeout=self._timeout)
        if response.status_code not in (200, 201, 204):
            raise RuntimeError(f"S3 POST answered {response.status_code}: {response.text[:200]}")

    def status(self, image_id: str) -> str:
        response = self._session.get(
            f"{self._api}/images/{image_id}/status", headers=self._headers, timeout=self._timeout
        )
        if response.status_code != 200:
            raise RuntimeError(f"status answered {response.status_code}")
        return str(response.json()["status"])

    def list_titles(self, deadline: float) -> list[tuple[str, str]]:
        """(title, id) of every image of the user, through the paginated listing."""
        found: list[tuple[str, str]] = []
        cursor: str | None = None
        for _ in range(1000):  # bounded: at most 100,000 images
            params: dict[str, str | int] = {"limit": 100}
            if cursor:
                params["cursor"] = cursor
            response = self._session.get(f"{self._api}/images", params=params, headers=self._headers, timeout=30)
            response.raise_for_status()
            page = response.json()
            found.extend((str(image.get("title")), str(image["id"])) for image in page["images"])
            cursor = page.get("nextCursor")
            if not cursor or time.monotonic() > deadline:
                break
        return found

    def subscribe(self, url: str) -> dict[str, Any]:
        response = self._session.post(f"{self._api}/webhooks", json={"url": url}, headers=self._headers, timeout=30)
        response.raise_for_status()
        webhook: dict[str, Any] = response.json()
        return webhook

    def unsubscribe(self, webhook_id: str) -> None:
        self._session.delete(f"{self._api}/webhooks/{webhook_id}", headers=self._headers, timeout=30)


def run_image(
    client: Client, key: str, data: bytes, timeout: float, deadline: float, poll_max: float, poll_interval: float | None
) -> ImageRun:
    run = ImageRun(key=key)
    try:
        started = time.monotonic()
        created = client.create(key, len(data))
        run.create_s = time.monotonic() - started
        run.image_id = str(created["id"])
        # A client that lost the first answer retries with the same key: it must get the same image.
        run.replay_id = str(client.create(key, len(data))["id"])
        started = time.monotonic()
        client.upload(created, data)
        uploaded = time.monotonic()
        run.upload_s = uploaded - started
        # As image_client/client.py: 0.1 s doubling to ``poll_max``; or a fixed interval.
        delay = poll_interval if poll_interval is not None else 0.1
        give_up = min(uploaded + timeout, deadline)
        for _ in range(10_000):  # bounded by the count and by the deadline
            try:
                run.status = client.status(run.image_id)
            except (requests.RequestException, RuntimeError) as exc:
                # A client retries a failed poll (with its backoff); it is counted, not fatal.
                run.poll_errors += 1
                run.error = f"last poll error: {type(exc).__name__}"
            run.polls += 1
            if run.status in TERMINAL:
                if run.status == "completed":
                    run.upload_to_completed_s = time.monotonic() - uploaded
                break
            if time.monotonic() > give_up:
                break
            time.sleep(delay)
            if poll_interval is None:
                delay = min(delay * 2, poll_max)
    except Exception as exc:  # reported, never raised: one client's failure is a data point
        run.error = f"{type(exc).__name__}: {exc}"[:300]
    return run


@contextmanager
def target(args: argparse.Namespace) -> Iterator[str]:
    if args.start_stack:
        from local_stack.process import local_stack

        with local_stack(workers=args.workers, api_processes=args.api_processes) as stack:
            yield stack.api_url
    else:
        yield require_loopback(args.api)


def run_load(args: argparse.Namespace, api_url: str) -> Report:
    from local_stack.webhook_receiver import WebhookReceiver

    run_id = uuid.uuid4().hex[:8]
    user_id = f"load-{run_id}"
    token = token_for(user_id)
    width, height = (int(part) for part in args.image_size.split("x"))
    images = [jpeg(width, height, seed) for seed in range(8)]
    admin = Client(api_url, token, args.request_timeout)
    deadline = time.monotonic() + args.deadline
    runs: list[ImageRun] = []
    errors: list[str] = []
    with ExitStack() as stack:
        receiver = stack.enter_context(WebhookReceiver().running())
        webhook = admin.subscribe(receiver.url)
        stack.callback(admin.unsubscribe, str(webhook["id"]))
        clients = [Client(api_url, token, args.request_timeout) for _ in range(args.clients)]
        barrier = threading.Barrier(args.clients, timeout=60)

        def one_client(index: int) -> list[ImageRun]:
            barrier.wait()  # every client starts at once
            results = []
            for number in range(args.images_per_client):
                key = f"{run_id}-{index:04d}-{number:03d}"
                data = images[(index + number) % len(images)]
                results.append(
                    run_image(clients[index], key, data, args.timeout, deadline, args.poll_max, args.poll_interval)
                )
            return results

        started = time.monotonic()
        with ThreadPoolExecutor(max_workers=args.clients, thread_name_prefix="load-client") as pool:
            for results in pool.map(one_client, range(args.clients)):
                runs.extend(results)
        wall = time.monotonic() - started

        completed = [r for r in runs if r.status == "completed"]
        terminal = [r for r in runs if r.status in TERMINAL]
        # Events: wait (bounded) until one per terminal image arrived, then a little longer for strays.
        receiver.wait_for(len(terminal), timeout=min(60.0, max(1.0, deadline + 60 - time.monotonic())))
        time.sleep(args.settle)
        events = receiver.events()
        listed = admin.list_titles(deadline + 60)

    event_ids_per_image: dict[str, set[str]] = defaultdict(set)
    bodies_per_event: dict[str, set[str]] = defaultdict(set)
    for event in events:
        if event.get("type") == "image.completed":
            event_ids_per_image[str(event["image"]["id"])].add(str(event["eventId"]))
        bodies_per_event[str(event["eventId"])].add(json.dumps(event, sort_keys=True))
    per_key = Counter(title for title, _ in listed)
    duplicated_images = sum(1 for count in per_key.values() if count > 1)
    duplicated_events = sum(1 for ids in event_ids_per_image.values() if len(ids) > 1)
    duplicated_events += sum(1 for bodies in bodies_per_event.values() if len(bodies) > 1)  # same id, other body
    errors.extend(f"{r.key}: {r.error}" for r in runs if r.error and r.status not in TERMINAL)
    missing_events = [r.image_id for r in completed if r.image_id not in event_ids_per_image]
    if missing_events:
        errors.append(f"{len(missing_events)} completed image(s) without a completed event")
    return Report(
        clients=args.clients,
        images_per_client=args.images_per_client,
        image_bytes=round(statistics.mean(len(i) for i in images)),
        image_size=args.image_size,
        wall_s=round(wall, 2),
        throughput_per_s=round(len(completed) / wall, 2) if wall > 0 else 0.0,
        statuses=dict(Counter(r.status or "none" for r in runs)),
        phases={
            "create": percentiles([r.create_s for r in runs if r.create_s is not None]),
            "upload": percentiles([r.upload_s for r in runs if r.upload_s is not None]),
            "upload_to_completed": percentiles(
                [r.upload_to_completed_s for r in runs if r.upload_to_completed_s is not None]
            ),
        },
        lost=sum(1 for r in runs if r.status not in TERMINAL),
        duplicated_images=duplicated_images + sum(1 for r in runs if r.replay_id and r.replay_id != r.image_id),
        duplicated_events=duplicated_events,
        replay_mismatches=sum(1 for r in runs if r.replay_id and r.replay_id != r.image_id),
        events_received=len(events),
        distinct_event_ids=len(bodies_per_event),
        redelivered_events=len(events) - len(bodies_per_event),
        poll_errors=sum(r.poll_errors for r in runs),
        client_requests_per_image={
            "create": 2.0,  # the create and its idempotent replay
            "s3_post": 1.0,
            "status_polls_mean": round(statistics.mean(r.polls for r in runs), 2) if runs else 0.0,
        },
        errors=errors[:20],
    )


def print_report(report: Report) -> None:
    total = report.clients * report.images_per_client
    print(
        f"{total} image(s) from {report.clients} client(s), {report.image_size} JPEG "
        f"(~{report.image_bytes} bytes), wall {report.wall_s:.1f} s"
    )
    print(f"throughput: {report.throughput_per_s:.2f} completed images/s; statuses {report.statuses}")
    print(f"{'phase':<22}{'n':>6}{'p50 ms':>10}{'p95 ms':>10}{'p99 ms':>10}{'max ms':>10}")
    for name in PHASES:
        p = report.phases[name]
        cells = [f"{v:>10.1f}" if v is not None else f"{'-':>10}" for v in (p.p50_ms, p.p95_ms, p.p99_ms, p.max_ms)]
        print(f"{name:<22}{p.count:>6}{''.join(cells)}")
    print(
        f"lost: {report.lost}  duplicated images: {report.duplicated_images}  "
        f"duplicated events: {report.duplicated_events}  "
        f"events: {report.events_received} ({report.distinct_event_ids} distinct, "
        f"{report.redelivered_events} redelivered); failed polls (retried): {report.poll_errors}"
    )
    print(f"client requests per image: {report.client_requests_per_image}")
    for error in report.errors:
        print(f"  error: {error}")


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--clients", type=int, required=True, help="concurrent clients (1..500)")
    parser.add_argument("--images-per-client", type=int, default=1, help="images each client uploads (1..100)")
    parser.add_argument("--api", default="http://127.0.0.1:8000", help="the local stack's API (loopback only)")
    parser.add_argument("--start-stack", action="store_true", help="start a local stack for the run, stop it after")
    parser.add_argument("--workers", type=int, default=2, help="processor workers of a started stack")
    parser.add_argument("--api-processes", type=int, default=None, help="API processes of a started stack")
    parser.add_argument("--image-size", default="800x600", help="WIDTHxHEIGHT of the generated JPEGs")
    parser.add_argument("--timeout", type=float, default=300.0, help="seconds after its upload an image may take")
    parser.add_argument("--deadline", type=float, default=900.0, help="seconds the whole run may take")
    parser.add_argument("--request-timeout", type=float, default=60.0, help="seconds per HTTP request")
    parser.add_argument("--settle", type=float, default=3.0, help="seconds to wait for stray duplicate events")
    parser.add_argument("--poll-max", type=float, default=2.0, help="longest pause between status polls (s)")
    parser.add_argument(
        "--poll-interval", type=float, default=None, help="poll every this many seconds instead of backing off"
    )
    parser.add_argument("--json", action="store_true", help="print the report as JSON")
    args = parser.parse_args(argv)
    if not 1 <= args.clients <= 500:
        parser.error("--clients must be 1..500")
    if not 1 <= args.images_per_client <= 100:
        parser.error("--images-per-client must be 1..100")
    try:
        width, height = (int(part) for part in args.image_size.split("x"))
    except ValueError:
        parser.error("--image-size must be WIDTHxHEIGHT")
    if not (16 <= width <= 8000 and 16 <= height <= 8000):
        parser.error("--image-size must be 16..8000 pixels a side")
    if args.poll_interval is not None and not 0.01 <= args.poll_interval <= 60:
        parser.error("--poll-interval must be 0.01..60 seconds")
    if not args.start_stack:
        try:
            require_loopback(args.api)
        except NotLoopback as exc:
            parser.error(str(exc))
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    with target(args) as api_url:
        report = run_load(args, api_url)
    if args.json:
        print(json.dumps(asdict(report), indent=2))
    else:
        print_report(report)
    return 0 if report.lost == 0 and report.duplicated_images == 0 and report.duplicated_events == 0 else 1


if __name__ == "__main__":
    sys.exit(main())
