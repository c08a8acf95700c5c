"""Upload image files to the Image Service and wait for each outcome.

    python scripts/upload.py --user alice photos/*.jpg
    python scripts/upload.py --token "$TOKEN" --api http://127.0.0.1:8000 --json kite.jpg

Files go up concurrently, each with a progress bar on stderr (bytes sent, then
processing). Each request carries an Idempotency-Key derived from the file's content
and name, so running the command again on the same files creates nothing new: the API
answers with the same image, and an image that already arrived is just reported.

stdout gets a summary table, or with --json exactly one JSON document:
{"results": [{"file", "id", "status", "imageUrl", "thumbnailUrl", "renditions", "srcset",
"thumbhash", "dominantColor", "duplicateOf", "error"}]}; the fields between the URLs and
the error are the completed Image's (API.md v1.1), null otherwise.
Exit status: 0 when every file completed, 1 when any did not, 2 for bad input
(missing file, unsupported extension, no token) or an unreachable API.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import sys
import threading
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TextIO

import requests

from image_client.client import CONTENT_TYPES, ApiError, Cancelled, ImageServiceClient

DEFAULT_API = "http://127.0.0.1:8000"
BAR_WIDTH = 24


class UsageError(Exception):
    """Bad input the user can fix; reported as one line, exit status 2."""


@dataclass
class Outcome:
    """What became of one file: the --json result object."""

    file: str
    id: str | None = None
    status: str = "pending"
    image_url: str | None = None
    thumbnail_url: str | None = None
    #: The completed Image's v1.1 fields, as GET /images/{id} gives them.
    renditions: list[dict[str, Any]] | None = None
    srcset: str | None = None
    thumbhash: str | None = None
    dominant_color: str | None = None
    duplicate_of: str | None = None
    error: dict[str, str] | None = None

    def as_json(self) -> dict[str, Any]:
        return {
            "file": self.file,
            "id": self.id,
            "status": self.status,
            "imageUrl": self.image_url,
            "thumbnailUrl": self.thumbnail_url,
            "renditions": self.renditions,
            "srcset": self.srcset,
            "thumbhash": self.thumbhash,
            "dominantColor": self.dominant_color,
            "duplicateOf": self.duplicate_of,
            "error": self.error,
        }

    def take_image(self, image: dict[str, Any]) -> None:
        """The completed Image's URLs, ladder and placeholders."""
        self.image_url = image.get("imageUrl", self.image_url)
        self.thumbnail_url = image.get("thumbnailUrl", self.thumbnail_url)
        self.renditions = image.get("renditions")
        self.srcset = image.get("srcset")
        self.thumbhash = image.get("thumbhash")
        self.dominant_color = image.get("dominantColor")
        self.duplicate_of = image.get("duplicateOf")


def idempotency_key(name: str, data: bytes, attempt: int = 0) -> str:
    """``sha256-<hex of the bytes>-<12 hex of the name>``: printable ASCII, 84 characters
    (``-r<n>`` after it for the n-th upload again, see ``upload_file``).

    The content hash makes a re-run of the same file a replay; the name is part of the
    request body, so it is part of the key too (a renamed copy is a new request, not a
    reuse of the key with a different body, which the API refuses with 422).
    """
    content = hashlib.sha256(data).hexdigest()
    named = hashlib.sha256(name.encode()).hexdigest()[:12]
    return f"sha256-{content}-{named}" + (f"-r{attempt}" if attempt else "")


# A replay that answers one of these is an image to upload again, under the next key: the
# file never arrived (expired), no delivery could process it, or it was deleted (404).
# Other failures (corrupt_image, unsupported_format...) would fail the same way again.
UPLOAD_AGAIN_ERRORS = frozenset({"processing_failed"})
MAX_UPLOADS_AGAIN = 5


def _upload_again(created: dict[str, Any]) -> bool:
    if created.get("upload"):
        return False
    if created["status"] == "expired":
        return True
    error = (created.get("image") or {}).get("error") or {}
    return created["status"] == "failed" and error.get("code") in UPLOAD_AGAIN_ERRORS


def create_or_replay(client: ImageServiceClient, path: Path, data: bytes) -> dict[str, Any]:
    """Create the file's image, or replay it; walks on to the next key (``-r1``, ``-r2``...)
    while the replay is an image to upload again, so re-running the command after an
    expiry or a deletion uploads the file again, and re-running it once more replays that."""
    content_type = CONTENT_TYPES[path.suffix.lower()]
    for attempt in range(MAX_UPLOADS_AGAIN + 1):
        last = attempt == MAX_UPLOADS_AGAIN
        try:
            created = client.create_upload(
                path.name, content_type, len(data), idempotency_key(path.name, data, attempt)
            )
        except ApiError as error:
            if error.status == 404 and error.code == "not_found" and not last:
                continue  # the image of this key was deleted
            raise
        if last or not _upload_again(created):
            return created
    raise AssertionError("unreachable")


@dataclass
class Line:
    label: str
    phase: str = "waiting"
    sent: int = 0
    total: int = 0


@dataclass
class Progress:
    """One line per file on stderr: redrawn in place on a terminal, else one line per phase."""

    stream: TextIO
    lines: list[Line] = field(default_factory=list)
    quiet: bool = False

    def __post_init__(self) -> None:
        self._lock = threading.Lock()
        self._live = self.stream.isatty() and not self.quiet
        self._drawn = False

    def add(self, label: str) -> int:
        self.lines.append(Line(label))
        return len(self.lines) - 1

    def bytes_sent(self, index: int, sent: int, total: int, phase: str = "uploading") -> None:
        line = self.lines[index]
        with self._lock:
            before = _percent(line.sent, line.total)
            line.sent, line.total = sent, total
            redraw = _percent(sent, total) != before or line.phase != phase
        if redraw:  # a whole percent more, not every 8 KiB
            self._update(index, phase)

    def phase(self, index: int, phase: str) -> None:
        self._update(index, phase)

    def _update(self, index: int, phase: str) -> None:
        with self._lock:
            line = self.lines[index]
            changed = line.phase != phase
            line.phase = phase
            if self._live:
                self._redraw()
            elif changed and not self.quiet:
                print(f"{line.label}: {phase}", file=self.stream, flush=True)

    def _redraw(self) -> None:
        if self._drawn:
            self.stream.write(f"\x1b[{len(self.lines)}F")
        width = max(len(line.label) for line in self.lines)
        for line in self.lines:
            self.stream.write(f"\x1b[2K{line.label:<{width}}  {_bar(line)}  {line.phase}\n")
        self.stream.flush()
        self._drawn = True


def _bar(line: Line) -> str:
    fraction = line.sent / line.total if line.total else 0.0
    if line.phase not in ("waiting", "creating", "uploading"):
        fraction = 1.0
    filled = round(fraction * BAR_WIDTH)
    return f"[{'#' * filled}{'-' * (BAR_WIDTH - filled)}] {_kib(line.sent)}/{_kib(line.total)}"


def _percent(sent: int, total: int) -> int:
    return sent * 100 // total if total else 0


def _kib(count: int) -> str:
    return f"{count / 1024:,.0f} KiB"


def check_files(paths: Sequence[str]) -> list[Path]:
    files: list[Path] = []
    for name in paths:
        path = Path(name)
        if not path.is_file():
            raise UsageError(f"no such file: {name}")
        if path.suffix.lower() not in CONTENT_TYPES:
            allowed = ", ".join(sorted(CONTENT_TYPES))
            raise UsageError(f"unsupported file type: {name} (allowed: {allowed})")
        files.append(path)
    return files


def upload_file(
    client: ImageServiceClient,
    path: Path,
    progress: Progress,
    index: int,
    timeout: float,
    stop: threading.Event | None = None,
) -> Outcome:
    outcome = Outcome(file=str(path))
    stop = stop or threading.Event()

    def polled(status: dict[str, Any]) -> None:
        outcome.status = status["status"]  # on a timeout, the last status seen
        progress.phase(index, _phase_of(status["status"]))

    try:
        if stop.is_set():
            raise Cancelled(str(path))
        data = path.read_bytes()
        progress.phase(index, "creating")
        created = create_or_replay(client, path, data)
        outcome.id, outcome.status = created["id"], created["status"]
        if created.get("upload"):
            # The body is the form fields plus the file: report the file's share of it.
            client.upload_with_progress(
                created,
                data,
                path.name,
                lambda sent, total: progress.bytes_sent(index, sent * len(data) // total, len(data)),
            )
            progress.phase(index, "processing")
        else:
            # A replay of an image that already arrived: nothing left to upload.
            progress.bytes_sent(index, len(data), len(data), f"already uploaded ({created['status']})")
        final = client.wait_until_done(outcome.id, timeout=timeout, on_poll=polled, should_stop=stop.is_set)
    except Cancelled:
        outcome.error = {"code": "interrupted", "message": "stopped before the outcome was known"}
    except ApiError as error:
        outcome.status = "failed"
        outcome.error = {"code": error.code, "message": str(error)}
    except requests.RequestException as error:
        outcome.status = "failed"
        outcome.error = {"code": "connection_error", "message": f"request failed: {error.__class__.__name__}"}
    except TimeoutError as error:
        outcome.error = {"code": "timeout", "message": str(error)}
    except OSError as error:
        outcome.status = "failed"
        outcome.error = {"code": "read_error", "message": f"cannot read {path}: {error.strerror}"}
    else:
        outcome.status = final["status"]
        outcome.image_url = final.get("imageUrl")
        outcome.thumbnail_url = final.get("thumbnailUrl")
        if final["status"] == "completed":
            try:
                # The status carries only the URLs; the Image has the ladder and placeholders.
                outcome.take_image(client.get_image(str(outcome.id)))
            except (ApiError, requests.RequestException) as error:
                # Completed all the same: report it, without the Image's extra fields.
                sys.stderr.write(f"upload.py: {path}: completed, but GET /images/{outcome.id} failed: {error}\n")
        if final.get("error"):
            outcome.error = {"code": str(final["error"].get("code")), "message": str(final["error"].get("message"))}
    progress.phase(index, outcome.status)
    return outcome


def _phase_of(status: str) -> str:
    # After the upload, "pending" only means the processor has not picked the file up yet.
    return "processing" if status == "pending" else status


def print_table(outcomes: Sequence[Outcome], out: TextIO) -> None:
    width = max([len("file"), *(len(o.file) for o in outcomes)])
    header = f"{'file':<{width}}  {'status':<10}  {'id':<26}  thumbnail / error"
    print(header, file=out)
    print("-" * len(header), file=out)
    for o in outcomes:
        detail = o.error["message"] if o.error else (o.thumbnail_url or "")
        print(f"{o.file:<{width}}  {o.status:<10}  {o.id or '-':<26}  {detail}", file=out)
    done = sum(o.status == "completed" for o in outcomes)
    print(f"\n{done}/{len(outcomes)} completed", file=out)


def resolve_token(token: str | None, user: str | None) -> str:
    if user is not None:
        if not user or "/" in user or len(user) > 128:
            raise UsageError("--user must be 1-128 characters without '/'")
        from chalicelib.auth import mint_local_token
        from infra.stage_config import LOCAL_STAGE, stage_environment

        env = stage_environment(LOCAL_STAGE)
        return mint_local_token(env["LOCAL_JWT_SECRET"], user, issuer=env["JWT_ISSUER"], audience=env["JWT_AUDIENCE"])
    token = token or os.environ.get("IMAGE_SERVICE_TOKEN")
    if not token:
        raise UsageError("give --token TOKEN (or IMAGE_SERVICE_TOKEN) or --user NAME")
    return token


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="upload.py", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("files", nargs="+", metavar="FILE", help="JPEG, PNG, WebP or GIF files")
    parser.add_argument(
        "--api",
        default=os.environ.get("IMAGE_SERVICE_API", DEFAULT_API),
        help=f"the API's base URL (default $IMAGE_SERVICE_API or {DEFAULT_API})",
    )
    who = parser.add_mutually_exclusive_group()
    who.add_argument("--token", help="a bearer token (default $IMAGE_SERVICE_TOKEN)")
    who.add_argument("--user", help="mint a local-stage token for this user id")
    parser.add_argument("--json", action="store_true", help="print one JSON document instead of the table")
    parser.add_argument("--concurrency", type=int, default=4, help="files in flight at once (default 4)")
    parser.add_argument("--timeout", type=float, default=300.0, help="seconds to wait for each outcome")
    args = parser.parse_args(argv)

    try:
        files = check_files(args.files)
        client = ImageServiceClient(args.api, resolve_token(args.token, args.user))
        try:
            client.health()
        except requests.RequestException as error:
            reason = error.__class__.__name__
            raise UsageError(f"cannot reach the Image Service at {client.api_url} ({reason})") from None
        except ApiError as error:
            raise UsageError(f"{client.api_url} is not the Image Service (GET /health: HTTP {error.status})") from None
    except UsageError as error:
        print(f"upload.py: error: {error}", file=sys.stderr)
        return 2

    progress = Progress(sys.stderr)
    indexes = [progress.add(path.name) for path in files]

    stop = threading.Event()

    def run(index: int) -> Outcome:
        # One client per file: requests sessions are not meant to be shared across threads.
        own = ImageServiceClient(client.api_url, client.token)
        return upload_file(own, files[index], progress, index, args.timeout, stop)

    pool = ThreadPoolExecutor(max_workers=max(1, args.concurrency))
    futures = [pool.submit(run, index) for index in indexes]
    try:
        outcomes = [future.result() for future in futures]
    except KeyboardInterrupt:
        # Start no other file, stop waiting for outcomes; requests in flight finish first.
        stop.set()
        pool.shutdown(wait=True, cancel_futures=True)
        print("upload.py: interrupted", file=sys.stderr)
        return 130
    pool.shutdown()

    if args.json:
        json.dump({"results": [o.as_json() for o in outcomes]}, sys.stdout, indent=2)
        print()
    else:
        print_table(outcomes, sys.stdout)
    return 0 if all(o.status == "completed" for o in outcomes) else 1


def cli() -> int:
    """The command: ``main`` with Ctrl-C reported as an interruption (exit 130), not a traceback."""
    try:
        return main()
    except KeyboardInterrupt:
        print("upload.py: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    raise SystemExit(cli())
