"""`make demo`: start the local stack, upload the corpus photos the way a client does, show the results.

For each photo: POST /images -> multipart POST straight to S3 with the presigned form ->
poll GET /images/{id}/status until it is terminal. The renditions are downloaded into
the output folder, and the stack stops at the end. Exit status 0 only when every photo
completed.

    python scripts/demo.py [--corpus DIR] [--out DIR] [--user NAME]
"""

from __future__ import annotations

import argparse
import io
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

from PIL import Image

from chalicelib.auth import mint_local_token
from image_client.client import CONTENT_TYPES, ImageServiceClient
from image_client.sns_verify import SnsVerificationError, verify_message
from infra.stage_config import CORPUS_DIR, LOCAL_STAGE, stage_environment
from local_stack.process import PROJECT_ROOT, RunningStack, local_stack
from local_stack.webhook_receiver import WebhookReceiver, local_certificates

DEFAULT_CORPUS = CORPUS_DIR


@dataclass
class Result:
    file: str
    status: str
    source_bytes: int
    webp_bytes: int = 0
    thumb_bytes: int = 0
    size: str = ""
    seconds: float = 0.0
    error: str = ""


def upload_one(client: ImageServiceClient, path: Path, out_dir: Path) -> Result:
    data = path.read_bytes()
    created = client.create_upload(path.name, CONTENT_TYPES[path.suffix.lower()], len(data), title=path.stem)
    print(f"  {path.name}: created {created['id']}, uploading {len(data):,} bytes", file=sys.stderr)
    client.upload(created, data, path.name)
    uploaded = time.monotonic()
    final = client.wait_until_done(created["id"], timeout=300)
    seconds = time.monotonic() - uploaded
    result = Result(path.name, final["status"], len(data), seconds=seconds)
    if final["status"] != "completed":
        result.error = final.get("error", {}).get("message", "")
        return result
    webp = client.fetch(final["imageUrl"])
    thumb = client.fetch(final["thumbnailUrl"])
    (out_dir / f"{path.stem}.webp").write_bytes(webp)
    (out_dir / f"{path.stem}.thumb.webp").write_bytes(thumb)
    with Image.open(io.BytesIO(webp)) as image:
        result.size = f"{image.width}x{image.height}"
    result.webp_bytes, result.thumb_bytes = len(webp), len(thumb)
    print(f"  {path.name}: {final['status']} {seconds:.2f}s after upload", file=sys.stderr)
    return result


def print_table(results: list[Result]) -> None:
    header = (
        f"{'file':<22} {'status':<10} {'source':>11} {'webp':>10} {'thumb':>8} {'rendition':>10} {'upload->done':>13}"
    )
    print(header)
    print("-" * len(header))
    for r in results:
        print(
            f"{r.file:<22} {r.status:<10} {r.source_bytes:>11,} {r.webp_bytes:>10,} {r.thumb_bytes:>8,} "
            f"{r.size:>10} {r.seconds:>12.2f}s"
        )
        if r.error:
            print(f"{'':<22} error: {r.error}")


def print_events(receiver: WebhookReceiver, stack: RunningStack, topic_arn: str, expected: int) -> None:
    receiver.wait_for(expected, timeout=30)
    fetch = local_certificates(stack.cdn_url)
    print(f"\nwebhook {receiver.url} received {len(receiver.deliveries)} event(s):")
    for delivery in receiver.deliveries:
        try:
            message = verify_message(delivery, expected_topic_arn=topic_arn, fetch_certificate=fetch)
        except SnsVerificationError as error:
            print(f"  REJECTED ({error})")
            continue
        event = message.json()
        print(f"  {event['type']:<16} image {event['image']['id']}  eventId {event['eventId']}  signature ok")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument(
        "--corpus", type=Path, default=DEFAULT_CORPUS, help=f"photos to upload (default {DEFAULT_CORPUS})"
    )
    parser.add_argument("--out", type=Path, default=PROJECT_ROOT / "demo-output", help="where renditions are written")
    parser.add_argument("--user", default="demo-user", help="the user id to upload as")
    parser.add_argument("--concurrency", type=int, default=4)
    args = parser.parse_args(argv)
    photos = sorted(p for p in args.corpus.glob("*") if p.suffix.lower() in CONTENT_TYPES)
    if not photos:
        parser.error(f"no JPEG/PNG/WebP/GIF files in {args.corpus}")
    args.out.mkdir(parents=True, exist_ok=True)
    env = stage_environment(LOCAL_STAGE)
    token = mint_local_token(env["LOCAL_JWT_SECRET"], args.user, issuer=env["JWT_ISSUER"], audience=env["JWT_AUDIENCE"])
    print("starting the local stack (moto, API, CDN, queue workers, sweep)...", file=sys.stderr)
    with local_stack() as stack, WebhookReceiver().running() as receiver:
        print(f"stack up: api {stack.api_url}, aws {stack.aws_url}; uploading {len(photos)} photos", file=sys.stderr)
        client = ImageServiceClient(stack.api_url, token)
        webhook = client.subscribe_webhook(receiver.url)
        print(f"webhook {webhook['id']} subscribed ({webhook['status']}) at {receiver.url}", file=sys.stderr)
        started = time.monotonic()
        with ThreadPoolExecutor(max_workers=args.concurrency) as pool:
            results = list(pool.map(lambda p: upload_one(client, p, args.out), photos))
        elapsed = time.monotonic() - started
        print()
        print_table(results)
        print_events(receiver, stack, env["EVENTS_TOPIC_ARN"], expected=len(results))
    done = sum(r.status == "completed" for r in results)
    print(f"\n{done}/{len(results)} completed in {elapsed:.1f}s; renditions written to {args.out}")
    return 0 if done == len(results) else 1


if __name__ == "__main__":
    raise SystemExit(main())
