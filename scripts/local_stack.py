"""The embedded local stack: moto's server, the Chalice API and the upload-queue worker.

    python scripts/local_stack.py            # make up: runs until Ctrl-C

Starts moto (S3, DynamoDB, SQS, SNS) on 127.0.0.1:4566, provisions the ``local`` stage
with the same code as the AWS stages, serves the app on 127.0.0.1:8000 and the
renditions on 127.0.0.1:8001 (a stand-in for CloudFront), and runs a
worker that long-polls the upload queue and calls the very same processor handler
Lambda calls, with Lambda's batch semantics (a batch that raises stays on the queue).
Needs no AWS account, no Docker and no network.
"""

from __future__ import annotations

import os
import sys

if __package__ in (None, ""):
    # Run as a file: put the project root first, and drop scripts/ so that
    # scripts/token.py cannot shadow the standard library's token module.
    sys.path[0] = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

import argparse
import os
import signal
import sys
import threading
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import unquote, urlsplit

from scripts.moto_dynamodb import serialise_moto_dynamodb, speed_up_moto_dynamodb
from scripts.moto_sns import match_sns_subscribe
from scripts.stage_config import FAKE_AWS_ENVIRONMENT, LOCAL_STAGE, PROJECT_ROOT, apply_stage_environment

READY_LINE = "local stack ready"
# Where the local CDN serves the certificates moto signs SNS deliveries with.
SNS_CERTIFICATES = "sns-certificates/"
PROCESSOR_HANDLER = "handle_upload_events"
SWEEP_HANDLER = "sweep_uploads"


@dataclass
class LambdaContext:
    """The parts of Lambda's context object the handlers read."""

    function_name: str
    aws_request_id: str
    timeout_seconds: float
    started: float

    def get_remaining_time_in_millis(self) -> int:
        return max(0, int((self.started + self.timeout_seconds - time.monotonic()) * 1000))


class QueueWorker(threading.Thread):
    """Long-polls the upload queue and invokes the processor handler like Lambda's SQS poller."""

    def __init__(
        self, handler: Callable[[dict[str, Any], Any], Any], queue_name: str, batch_size: int, stop: threading.Event
    ) -> None:
        super().__init__(name=f"queue-worker-{uuid.uuid4().hex[:4]}", daemon=True)
        self._handler = handler
        self._queue_name = queue_name
        self._batch_size = batch_size
        self._halt = stop

    def run(self) -> None:
        import boto3

        sqs = boto3.client("sqs", region_name=os.environ.get("AWS_REGION", "us-east-1"))
        url = sqs.get_queue_url(QueueName=self._queue_name)["QueueUrl"]
        arn = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
        while not self._halt.is_set():
            try:
                messages = sqs.receive_message(
                    QueueUrl=url,
                    MaxNumberOfMessages=self._batch_size,
                    WaitTimeSeconds=1,
                    AttributeNames=["All"],
                ).get("Messages", [])
            except Exception as exc:  # moto going down at shutdown, mostly
                if not self._halt.is_set():
                    print(f"worker: receive failed: {exc}", file=sys.stderr)
                    time.sleep(0.5)
                continue
            if not messages:
                continue
            event = {
                "Records": [
                    {
                        "messageId": m["MessageId"],
                        "receiptHandle": m["ReceiptHandle"],
                        "body": m["Body"],
                        "attributes": m.get("Attributes", {}),
                        "messageAttributes": {},
                        "md5OfBody": m.get("MD5OfBody", ""),
                        "eventSource": "aws:sqs",
                        "eventSourceARN": arn,
                        "awsRegion": os.environ.get("AWS_REGION", "us-east-1"),
                    }
                    for m in messages
                ]
            }
            context = LambdaContext(PROCESSOR_HANDLER, str(uuid.uuid4()), 60.0, time.monotonic())
            try:
                self._handler(event, context)
            except Exception as exc:
                # Lambda leaves a failed batch on the queue; it returns after the visibility timeout.
                print(f"worker: batch failed, will be redelivered: {exc}", file=sys.stderr)
                continue
            sqs.delete_message_batch(
                QueueUrl=url,
                Entries=[{"Id": str(i), "ReceiptHandle": m["ReceiptHandle"]} for i, m in enumerate(messages)],
            )


class LocalCdn(threading.Thread):
    """Plays CloudFront with origin access control: the image bucket stays private and
    this server reads it with credentials, so rendition URLs work with a plain GET."""

    def __init__(self, host: str, port: int, bucket: str) -> None:
        super().__init__(name="local-cdn", daemon=True)
        import boto3

        s3 = boto3.client("s3", region_name=os.environ.get("AWS_REGION", "us-east-1"))

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                self._serve(with_body=True)

            def do_HEAD(self) -> None:
                self._serve(with_body=False)

            def _serve(self, with_body: bool) -> None:
                key = unquote(urlsplit(self.path).path.lstrip("/"))
                if key.startswith(SNS_CERTIFICATES):
                    self._certificate(key.removeprefix(SNS_CERTIFICATES), with_body)
                    return
                try:
                    obj = s3.get_object(Bucket=bucket, Key=key)
                except s3.exceptions.NoSuchKey:
                    self.send_error(404, "Not Found")
                    return
                body = obj["Body"].read()
                self.send_response(200)
                self.send_header("Content-Type", obj.get("ContentType", "application/octet-stream"))
                self.send_header("Content-Length", str(len(body)))
                self.send_header("Cache-Control", obj.get("CacheControl", "no-cache"))
                self.send_header("ETag", obj.get("ETag", ""))
                self.send_header("Access-Control-Allow-Origin", "*")
                self.end_headers()
                if with_body:
                    self.wfile.write(body)

            def _certificate(self, name: str, with_body: bool) -> None:
                # moto signs SNS HTTP deliveries with a key of its own; subscribers of the
                # local stack fetch its certificate here (SigningCertURL's file name).
                from moto.core.models import DEFAULT_ACCOUNT_ID
                from moto.sns.models import sns_backends

                region = os.environ.get("AWS_REGION", "us-east-1")
                pem = sns_backends[DEFAULT_ACCOUNT_ID][region]._message_public_keys.get(name)
                if pem is None:
                    self.send_error(404, "Not Found")
                    return
                self.send_response(200)
                self.send_header("Content-Type", "application/x-pem-file")
                self.send_header("Content-Length", str(len(pem)))
                self.end_headers()
                if with_body:
                    self.wfile.write(pem)

            def log_message(self, format: str, *args: Any) -> None:
                return

        self.server = ThreadingHTTPServer((host, port), Handler)

    def run(self) -> None:
        self.server.serve_forever()


class Scheduler(threading.Thread):
    """Runs a scheduled handler every ``period`` seconds, as EventBridge would."""

    def __init__(
        self, handler: Callable[[dict[str, Any], Any], Any], name: str, period: float, stop: threading.Event
    ) -> None:
        super().__init__(name=f"schedule-{name}", daemon=True)
        self._handler = handler
        self._name = name
        self._period = period
        self._halt = stop

    def run(self) -> None:
        while not self._halt.wait(self._period):
            event = {
                "version": "0",
                "id": str(uuid.uuid4()),
                "detail-type": "Scheduled Event",
                "source": "aws.events",
                "account": "123456789012",
                "time": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
                "region": os.environ.get("AWS_REGION", "us-east-1"),
                "resources": [],
                "detail": {},
            }
            try:
                self._handler(event, LambdaContext(self._name, str(uuid.uuid4()), 60.0, time.monotonic()))
            except Exception as exc:
                print(f"schedule {self._name}: failed: {exc}", file=sys.stderr)


def configure_environment(aws_endpoint: str, cdn_url: str) -> dict[str, str]:
    os.environ["AWS_ENDPOINT_URL"] = aws_endpoint
    os.environ["IMAGE_BASE_URL"] = cdn_url
    os.environ.update(FAKE_AWS_ENVIRONMENT)
    for name in ("AWS_PROFILE", "AWS_CONFIG_FILE", "AWS_SHARED_CREDENTIALS_FILE"):
        os.environ.pop(name, None)
    configured = apply_stage_environment(LOCAL_STAGE)
    # What the process will run with: the stage's values unless the caller overrode them.
    return {name: os.environ[name] for name in configured}


def run(
    host: str, aws_port: int, api_port: int, cdn_port: int, workers: int, sweep_seconds: float, stop: threading.Event
) -> None:
    import logging

    from moto.server import ThreadedMotoServer

    logging.getLogger("werkzeug").setLevel(logging.WARNING)  # moto's per-request lines

    aws_endpoint = f"http://{host}:{aws_port}"
    cdn_url = f"http://{host}:{cdn_port}"
    environment = configure_environment(aws_endpoint, cdn_url)

    serialise_moto_dynamodb()
    speed_up_moto_dynamodb()
    match_sns_subscribe()
    moto_server = ThreadedMotoServer(ip_address=host, port=aws_port, verbose=False)
    moto_server.start()

    from scripts.provision import provision_stage

    report = provision_stage(LOCAL_STAGE, aws_endpoint)
    print(f"provisioned the local stage ({len(report.changes)} change(s))", flush=True)

    cdn = LocalCdn(host, cdn_port, environment["IMAGE_BUCKET"])
    cdn.start()

    from chalice import local as chalice_local
    from chalice.cli.factory import CLIFactory

    from scripts import gateway_responses

    # http.server answers methods it has no do_* for with an HTML 501; API Gateway answers
    # them like any unrouted method, and so does the app's handler (405, API error body).
    handler_cls = chalice_local.ChaliceRequestHandler

    def any_method(self: Any, name: str) -> Any:
        if name.startswith("do_"):
            return self._generic_handle
        raise AttributeError(name)

    handler_cls.__getattr__ = any_method

    # An unknown route: chalice local answers 403 as API Gateway does (and, given a bearer
    # token, echoes it back). The AWS stages answer it with the gateway response of
    # scripts/gateway_responses.py: answer the same here.
    send_error = handler_cls._send_error_response

    def unknown_route_like_aws(self: Any, error: Any) -> None:
        if getattr(error, "headers", {}).get("x-amzn-ErrorType") != "UnauthorizedException":
            send_error(self, error)
            return
        status, headers, body = gateway_responses.render(
            "MISSING_AUTHENTICATION_TOKEN", error.headers.get("x-amzn-RequestId", "")
        )
        self._send_http_response(status, headers, body)

    handler_cls._send_error_response = unknown_route_like_aws  # type: ignore[method-assign]

    # http.server logs each request line to stderr, query string included: the demo page's
    # ?token= would land in the terminal. Log the path without it.
    def log_request_without_query(self: Any, code: Any = "-", size: Any = "-") -> None:
        method, _, rest = str(getattr(self, "requestline", "")).partition(" ")
        target, _, version = rest.partition(" ")
        path, query_mark, _ = target.partition("?")
        self.log_message('"%s %s%s %s" %s %s', method, path, "?..." if query_mark else "", version, code, size)

    handler_cls.log_request = log_request_without_query
    # socketserver's default listen backlog is 5: bursts of clients would be reset.
    chalice_local.ThreadedHTTPServer.request_queue_size = 256
    chalice_local.ThreadedHTTPServer.daemon_threads = True

    factory = CLIFactory(project_dir=str(PROJECT_ROOT), environ=os.environ)
    app = factory.load_chalice_app(environment)
    config = factory.create_config_obj(chalice_stage_name=LOCAL_STAGE)
    server = factory.create_local_server(app, config, host, api_port)
    api_thread = threading.Thread(target=server.server.serve_forever, name="chalice-local", daemon=True)
    api_thread.start()

    handler = app.handler_map[PROCESSOR_HANDLER]
    queue_name = environment["UPLOAD_QUEUE_NAME"]
    worker_threads = [QueueWorker(handler, queue_name, batch_size=5, stop=stop) for _ in range(workers)]
    for worker in worker_threads:
        worker.start()
    sweeper = Scheduler(app.handler_map[SWEEP_HANDLER], SWEEP_HANDLER, sweep_seconds, stop)
    sweeper.start()

    print(f"{READY_LINE}: api=http://{host}:{api_port} aws={aws_endpoint} cdn={cdn_url} workers={workers}", flush=True)
    try:
        while not stop.is_set():
            stop.wait(0.5)
    finally:
        for worker in worker_threads:
            worker.join(timeout=3)
        sweeper.join(timeout=3)
        server.server.shutdown()
        cdn.server.shutdown()
        moto_server.stop()
        print("local stack stopped", flush=True)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--aws-port", type=int, default=int(os.environ.get("LOCAL_AWS_PORT", "4566")))
    parser.add_argument("--api-port", type=int, default=int(os.environ.get("LOCAL_API_PORT", "8000")))
    parser.add_argument("--cdn-port", type=int, default=int(os.environ.get("LOCAL_CDN_PORT", "8001")))
    parser.add_argument("--workers", type=int, default=2, help="concurrent processor invocations")
    parser.add_argument("--sweep-seconds", type=float, default=10.0, help="period of the expiry/outbox sweep")
    args = parser.parse_args(argv)
    if args.host not in ("127.0.0.1", "localhost", "::1"):
        parser.error("the local stack only listens on loopback")
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    signal.signal(signal.SIGINT, lambda *_: stop.set())
    run(args.host, args.aws_port, args.api_port, args.cdn_port, args.workers, args.sweep_seconds, stop)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
