"""The local stack: moto's server, the Chalice API, the CDN stand-in, the upload-queue
workers and the sweep, each in processes of their own.

    python -m local_stack            # make up: runs until Ctrl-C

Starts moto (S3, DynamoDB, SQS, SNS) on 127.0.0.1:4566, provisions the ``local`` stage
with the same code as the AWS stages, serves the app on 127.0.0.1:8000 and the
renditions on 127.0.0.1:8001 (a stand-in for CloudFront), and runs workers that
long-poll the upload queue and call the very same processor handler Lambda calls, with
Lambda's batch semantics (partial batch responses: the records the handler reports as
failed stay on the queue, as does a batch that raises), plus the scheduled
sweep. Needs no AWS account, no Docker and no network.

Processes, so that a burst of API requests cannot starve processing of the CPU (one
interpreter, one GIL: 200 clients polling every 50 ms held processing at 0.4 images/s,
docs/benchmarks.md):

- ``moto``: moto's server and the CDN stand-in (which reads moto's SNS signing keys in
  process, and the bucket over HTTP like CloudFront's origin access);
- ``api`` x ``--api-processes``: Chalice's local server, all on one port (SO_REUSEPORT:
  the kernel spreads connections over them, as API Gateway spreads requests over Lambda
  instances);
- ``worker`` x ``--workers``: one processor invocation at a time each, like Lambda
  instances of the processor;
- ``sweep``: the scheduled sweep, every ``--sweep-seconds``.

This process supervises them: it checks the ports, starts moto, provisions the stage,
starts the rest, prints the ready line once every child reported ready, and stops all of
them on SIGINT/SIGTERM or as soon as one of them dies. Each child is killed by the kernel
if this process dies without stopping them (local_stack/children.py).
"""

from __future__ import annotations

import argparse
import os
import select
import signal
import socket
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import unquote, urlsplit

from infra.stage_config import FAKE_AWS_ENVIRONMENT, LOCAL_STAGE, PROJECT_ROOT, apply_stage_environment
from local_stack.children import die_with_parent, stop_processes
from local_stack.http_errors import JsonErrors
from local_stack.moto_dynamodb import serialise_moto_dynamodb, speed_up_moto_dynamodb
from local_stack.moto_sns import match_sns_subscribe
from local_stack.patched_versions import require

READY_LINE = "local stack ready"
# Where the local CDN serves the certificates moto signs SNS deliveries with.
SNS_CERTIFICATES = "sns-certificates/"
PROCESSOR_HANDLER = "handle_upload_events"
SWEEP_HANDLER = "sweep_uploads"
ROLES = ("moto", "api", "worker", "sweep")
# Seconds a child may take to report ready (imports, moto's first requests) on a busy machine.
CHILD_START_TIMEOUT = 90.0


@dataclass
class LambdaContext:
    """The parts of Lambda's context object the handlers read."""

    function_name: str
    aws_request_id: str
    timeout_seconds: float
    started: float

    def get_remaining_time_in_millis(self) -> int:
        return max(0, int((self.started + self.timeout_seconds - time.monotonic()) * 1000))


# -- the children ---------------------------------------------------------------------------


def acknowledged[M: Mapping[str, object]](messages: Sequence[M], response: object) -> list[M]:
    """The messages of a batch to delete after the handler returned ``response``, as Lambda's
    SQS poller does with ``ReportBatchItemFailures``: all but the ``batchItemFailures``; an
    empty or missing list means all; a malformed response, or an ``itemIdentifier`` that is
    not a message of the batch, fails the whole batch (nothing is deleted)."""
    if response is None:
        return list(messages)
    if not isinstance(response, dict):
        return []
    failures = response.get("batchItemFailures")
    if failures is None:
        return list(messages)
    if not isinstance(failures, list):
        return []
    batch_ids = {m["MessageId"] for m in messages}
    failed: set[str] = set()
    for failure in failures:
        identifier = failure.get("itemIdentifier") if isinstance(failure, dict) else None
        if not isinstance(identifier, str) or identifier not in batch_ids:
            return []
        failed.add(identifier)
    return [m for m in messages if m["MessageId"] not in failed]


class QueueWorker:
    """Long-polls the upload queue and invokes the processor handler like Lambda's SQS poller
    with ``ReportBatchItemFailures``: one batch at a time; when the handler returns, every
    message but its ``batchItemFailures`` is deleted (:func:`acknowledged`); when it raises,
    the whole batch stays on the queue."""

    def __init__(
        self, handler: Callable[[dict[str, Any], Any], Any], queue_name: str, batch_size: int, stop: threading.Event
    ) -> None:
        self._handler = handler
        self._queue_name = queue_name
        self._batch_size = batch_size
        self._halt = stop

    def run(self, ready: Callable[[], None] = lambda: None) -> None:
        import boto3

        sqs = boto3.client("sqs", region_name=os.environ.get("AWS_REGION", "us-east-1"))
        url = sqs.get_queue_url(QueueName=self._queue_name)["QueueUrl"]
        arn = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
        ready()
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
                response = self._handler(event, context)
            except Exception as exc:
                # Lambda leaves a failed batch on the queue; it returns after the visibility timeout.
                print(f"worker: batch failed, will be redelivered: {exc}", file=sys.stderr)
                continue
            done = acknowledged(messages, response)
            if len(done) < len(messages):
                print(f"worker: {len(messages) - len(done)} record(s) will be redelivered", file=sys.stderr)
            if not done:
                continue
            try:
                sqs.delete_message_batch(
                    QueueUrl=url,
                    Entries=[{"Id": str(i), "ReceiptHandle": m["ReceiptHandle"]} for i, m in enumerate(done)],
                )
            except Exception as exc:  # the batch comes back and is processed again, idempotently
                print(f"worker: could not delete a processed batch: {exc}", file=sys.stderr)


class LocalCdn(threading.Thread):
    """Plays CloudFront with origin access control: the image bucket stays private and
    this server reads it with credentials, so rendition URLs work with a plain GET."""

    def __init__(self, host: str, port: int, bucket: str) -> None:
        super().__init__(name="local-cdn", daemon=True)
        # The certificates are read from moto's SNS backend, a private attribute.
        require("moto", "local_stack/supervisor.py (LocalCdn)", "check SNSBackend._message_public_keys")
        import boto3
        from botocore.exceptions import BotoCoreError, ClientError

        s3 = boto3.client("s3", region_name=os.environ.get("AWS_REGION", "us-east-1"))

        class Handler(JsonErrors, BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                self._serve(with_body=True)

            def do_HEAD(self) -> None:
                self._serve(with_body=False)

            def _serve(self, with_body: bool) -> None:
                key = unquote(urlsplit(self.path).path.lstrip("/"))
                if key.startswith(SNS_CERTIFICATES):
                    self._certificate(key.removeprefix(SNS_CERTIFICATES), with_body)
                    return
                if not key:  # GET /: no object has an empty key
                    self.send_error(404)
                    return
                try:
                    obj = s3.get_object(Bucket=bucket, Key=key)
                    body = obj["Body"].read()
                except ClientError as exc:
                    # A missing key, or one S3 refuses (too long...): not found, as CloudFront says.
                    status = exc.response.get("ResponseMetadata", {}).get("HTTPStatusCode", 404)
                    self.send_error(404 if status < 500 else 502)
                    return
                except BotoCoreError:
                    self.send_error(502)
                    return
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
                # local stack fetch its certificate here (SigningCertURL's file name). This
                # thread runs in moto's process for that reason.
                from moto.core.models import DEFAULT_ACCOUNT_ID
                from moto.sns.models import sns_backends

                region = os.environ.get("AWS_REGION", "us-east-1")
                pem = sns_backends[DEFAULT_ACCOUNT_ID][region]._message_public_keys.get(name)
                if pem is None:
                    self.send_error(404)
                    return
                self.send_response(200)
                self.send_header("Content-Type", "application/x-pem-file")
                self.send_header("Content-Length", str(len(pem)))
                self.end_headers()
                if with_body:
                    self.wfile.write(pem)

            def log_message(self, format: str, *args: Any) -> None:
                return

        ThreadingHTTPServer.request_queue_size = 256
        self.server = ThreadingHTTPServer((host, port), Handler)

    def run(self) -> None:
        self.server.serve_forever()


def run_schedule(
    handler: Callable[[dict[str, Any], Any], Any], name: str, period: float, stop: threading.Event
) -> None:
    """Runs a scheduled handler every ``period`` seconds, as EventBridge would."""
    while not stop.wait(period):
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
            handler(event, LambdaContext(name, str(uuid.uuid4()), 60.0, time.monotonic()))
        except Exception as exc:
            print(f"schedule {name}: failed: {exc}", file=sys.stderr)


def configure_environment(aws_endpoint: str, cdn_url: str) -> dict[str, str]:
    os.environ["AWS_ENDPOINT_URL"] = aws_endpoint
    os.environ["IMAGE_BASE_URL"] = cdn_url
    os.environ.update(FAKE_AWS_ENVIRONMENT)
    for name in ("AWS_PROFILE", "AWS_CONFIG_FILE", "AWS_SHARED_CREDENTIALS_FILE"):
        os.environ.pop(name, None)
    configured = apply_stage_environment(LOCAL_STAGE)
    # What the process will run with: the stage's values unless the caller overrode them.
    return {name: os.environ[name] for name in configured}


def serve_moto(host: str, aws_port: int, cdn_port: int, stop: threading.Event, ready: Callable[[], None]) -> None:
    """moto's server with the local stack's patches, and the CDN stand-in."""
    import logging

    from moto.server import ThreadedMotoServer

    logging.getLogger("werkzeug").setLevel(logging.WARNING)  # moto's per-request lines

    serialise_moto_dynamodb()
    speed_up_moto_dynamodb()
    match_sns_subscribe()
    moto_server = ThreadedMotoServer(ip_address=host, port=aws_port, verbose=False)
    moto_server.start()
    cdn = LocalCdn(host, cdn_port, os.environ["IMAGE_BUCKET"])
    cdn.start()
    ready()
    try:
        stop.wait()
    finally:
        cdn.server.shutdown()
        moto_server.stop()


def load_app() -> tuple[Any, Any]:
    """Chalice's CLI factory and the app, loaded as ``chalice local`` loads them."""
    from chalice.cli.factory import CLIFactory

    factory = CLIFactory(project_dir=str(PROJECT_ROOT), environ=os.environ)
    return factory, factory.load_chalice_app({name: os.environ[name] for name in apply_stage_environment(LOCAL_STAGE)})


def serve_api(host: str, api_port: int, concurrency: int, stop: threading.Event, ready: Callable[[], None]) -> None:
    """Chalice's local server, sharing ``api_port`` with the other API processes."""
    from chalice import local as chalice_local

    from infra import gateway_responses

    require(
        "chalice",
        "local_stack/supervisor.py (ChaliceRequestHandler, ThreadedHTTPServer)",
        "check the request handler's _generic_handle, _send_error_response and _send_http_response",
    )

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
    # What http.server refuses itself (a URL or headers too large, a garbled request line)
    # gets API.md's error body, not its HTML page.
    handler_cls.send_error = JsonErrors.send_error
    handler_cls._drain = JsonErrors._drain

    # http.server logs each request line to stderr, query string included: the demo page's
    # ?token= would land in the terminal. Log the path without it.
    def log_request_without_query(self: Any, code: Any = "-", size: Any = "-") -> None:
        method, _, rest = str(getattr(self, "requestline", "")).partition(" ")
        target, _, version = rest.partition(" ")
        path, query_mark, _ = target.partition("?")
        self.log_message('"%s %s%s %s" %s %s', method, path, "?..." if query_mark else "", version, code, size)

    handler_cls.log_request = log_request_without_query

    # Like a Lambda instance, an API process runs ``concurrency`` invocations at a time (one
    # by default); connections stay open (keep-alive, browsers) and their requests wait their
    # turn. Without this, a burst of polls put hundreds of concurrent calls on moto, which
    # serves the workers too (docs/benchmarks.md, "Load").
    invocations = threading.BoundedSemaphore(concurrency)
    generic_handle = handler_cls._generic_handle

    def one_invocation_at_a_time(self: Any) -> None:
        with invocations:
            generic_handle(self)

    handler_cls._generic_handle = one_invocation_at_a_time  # type: ignore[method-assign]
    for method in ("GET", "PUT", "POST", "HEAD", "DELETE", "PATCH", "OPTIONS"):
        setattr(handler_cls, f"do_{method}", one_invocation_at_a_time)
    # socketserver's default listen backlog is 5: bursts of clients would be reset.
    chalice_local.ThreadedHTTPServer.request_queue_size = 256
    chalice_local.ThreadedHTTPServer.daemon_threads = True
    # Every API process listens on the same port; the supervisor made sure nothing else does.
    chalice_local.ThreadedHTTPServer.allow_reuse_port = True

    factory, app = load_app()
    config = factory.create_config_obj(chalice_stage_name=LOCAL_STAGE)
    server = factory.create_local_server(app, config, host, api_port)
    thread = threading.Thread(target=server.server.serve_forever, name="chalice-local", daemon=True)
    thread.start()
    ready()
    try:
        stop.wait()
    finally:
        server.server.shutdown()


def run_worker(stop: threading.Event, ready: Callable[[], None]) -> None:
    from chalicelib.events.uploads import BATCH_SIZE

    _, app = load_app()
    QueueWorker(app.handler_map[PROCESSOR_HANDLER], os.environ["UPLOAD_QUEUE_NAME"], BATCH_SIZE, stop).run(ready)


def run_sweep(period: float, stop: threading.Event, ready: Callable[[], None]) -> None:
    _, app = load_app()
    ready()
    run_schedule(app.handler_map[SWEEP_HANDLER], SWEEP_HANDLER, period, stop)


def run_role(args: argparse.Namespace, stop: threading.Event) -> None:
    """One child of the stack; reports ready by writing its role to ``--ready-fd``."""

    def ready() -> None:
        os.write(args.ready_fd, f"{args.role}\n".encode())
        os.close(args.ready_fd)

    if args.role == "moto":
        serve_moto(args.host, args.aws_port, args.cdn_port, stop, ready)
    elif args.role == "api":
        serve_api(args.host, args.api_port, args.api_concurrency, stop, ready)
    elif args.role == "worker":
        run_worker(stop, ready)
    else:
        run_sweep(args.sweep_seconds, stop, ready)


# -- the supervisor -------------------------------------------------------------------------


def port_taken(host: str, port: int) -> bool:
    """Whether anything listens on ``port``, in particular an API process of an earlier
    stack left behind (a plain bind fails even against SO_REUSEPORT sockets)."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    with socket.socket(family, socket.SOCK_STREAM) as probe:
        # As the servers themselves: connections of a stack just stopped (TIME_WAIT) do not
        # count, a listening socket does.
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            probe.bind((host, port))
        except OSError:
            return True
    return False


class Supervisor:
    """Starts the children, waits for their ready reports, stops them all at the end."""

    def __init__(self, args: argparse.Namespace, stop: threading.Event) -> None:
        self._args = args
        self._stop = stop
        self.children: list[tuple[str, subprocess.Popen[bytes]]] = []

    def start(self, roles: list[str]) -> None:
        """Start one child per entry of ``roles`` and wait until each reported ready."""
        read_end, write_end = os.pipe()
        base = [sys.executable, "-m", "local_stack"]
        started = []
        try:
            for role in roles:
                process = subprocess.Popen(
                    [*base, f"--role={role}", *self._child_arguments(), f"--ready-fd={write_end}"],
                    cwd=PROJECT_ROOT,
                    pass_fds=(write_end,),
                    preexec_fn=die_with_parent(),
                )
                self.children.append((role, process))
                started.append(process)
        finally:
            os.close(write_end)
        try:
            self._wait_ready(read_end, roles, started)
        finally:
            os.close(read_end)

    def _child_arguments(self) -> list[str]:
        a = self._args
        return [
            f"--host={a.host}",
            f"--aws-port={a.aws_port}",
            f"--api-port={a.api_port}",
            f"--cdn-port={a.cdn_port}",
            f"--sweep-seconds={a.sweep_seconds}",
            f"--api-concurrency={a.api_concurrency}",
        ]

    def _wait_ready(self, read_end: int, roles: list[str], started: list[subprocess.Popen[bytes]]) -> None:
        waiting = sorted(roles)
        buffer = b""
        deadline = time.monotonic() + CHILD_START_TIMEOUT
        while waiting:
            if self._stop.is_set():
                raise SystemExit(1)
            self.check_alive()
            if time.monotonic() > deadline:
                raise RuntimeError(f"not ready after {CHILD_START_TIMEOUT:.0f} s: {', '.join(waiting)}")
            readable, _, _ = select.select([read_end], [], [], 0.2)
            if not readable:
                continue
            chunk = os.read(read_end, 4096)
            if not chunk and any(p.poll() is None for p in started):
                time.sleep(0.2)  # every write end is closed; whoever has not reported is dying
            buffer += chunk
            *lines, rest = buffer.split(b"\n")
            buffer = rest
            for line in lines:
                waiting.remove(line.decode())

    def check_alive(self) -> None:
        for role, process in self.children:
            if process.poll() is not None:
                raise RuntimeError(f"the {role} process (pid {process.pid}) exited with {process.returncode}")

    def stop_all(self) -> None:
        # moto last: a worker finishing its batch, or the sweep, still reaches it.
        stop_processes([process for role, process in self.children if role != "moto"], timeout=10.0)
        stop_processes([process for role, process in self.children if role == "moto"], timeout=10.0)


def run(args: argparse.Namespace, stop: threading.Event) -> int:
    host = args.host
    taken = [port for port in (args.aws_port, args.api_port, args.cdn_port) if port_taken(host, port)]
    if taken:
        print(f"local stack: port(s) {', '.join(map(str, taken))} already in use on {host}", file=sys.stderr)
        return 2
    aws_endpoint = f"http://{host}:{args.aws_port}"
    cdn_url = f"http://{host}:{args.cdn_port}"
    configure_environment(aws_endpoint, cdn_url)  # the children inherit it
    supervisor = Supervisor(args, stop)
    status = 0
    try:
        supervisor.start(["moto"])

        from infra.provision import provision_stage

        report = provision_stage(LOCAL_STAGE, aws_endpoint)
        print(f"provisioned the local stage ({len(report.changes)} change(s))", flush=True)
        supervisor.start(["api"] * args.api_processes + ["worker"] * args.workers + ["sweep"])
        print(
            f"{READY_LINE}: api=http://{host}:{args.api_port} aws={aws_endpoint} cdn={cdn_url} "
            f"workers={args.workers} api-processes={args.api_processes} api-concurrency={args.api_concurrency}",
            flush=True,
        )
        while not stop.wait(0.5):
            supervisor.check_alive()
    except RuntimeError as exc:
        print(f"local stack: {exc}; stopping", file=sys.stderr, flush=True)
        status = 1
    except SystemExit as exc:  # stopped while starting
        status = int(exc.code or 0)
    finally:
        supervisor.stop_all()
        print("local stack stopped", flush=True)
    return status


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--aws-port", type=int, default=int(os.environ.get("LOCAL_AWS_PORT", "4566")))
    parser.add_argument("--api-port", type=int, default=int(os.environ.get("LOCAL_API_PORT", "8000")))
    parser.add_argument("--cdn-port", type=int, default=int(os.environ.get("LOCAL_CDN_PORT", "8001")))
    parser.add_argument("--workers", type=int, default=2, help="processor processes (one invocation at a time each)")
    parser.add_argument("--api-processes", type=int, default=2, help="API server processes sharing the API port")
    parser.add_argument(
        "--api-concurrency", type=int, default=1, help="requests an API process runs at a time (a Lambda instance: 1)"
    )
    parser.add_argument("--sweep-seconds", type=float, default=10.0, help="period of the expiry/outbox sweep")
    # Internal: how the supervisor starts its children.
    parser.add_argument("--role", choices=ROLES, help=argparse.SUPPRESS)
    parser.add_argument("--ready-fd", type=int, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.host not in ("127.0.0.1", "localhost", "::1"):
        parser.error("the local stack only listens on loopback")
    if not all(1 <= n <= 32 for n in (args.workers, args.api_processes, args.api_concurrency)):
        parser.error("--workers, --api-processes and --api-concurrency must be 1..32")
    if (args.role is None) != (args.ready_fd is None):
        parser.error("--role and --ready-fd go together")
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    signal.signal(signal.SIGINT, lambda *_: stop.set())
    if args.role is not None:
        run_role(args, stop)
        return 0
    return run(args, stop)


if __name__ == "__main__":
    raise SystemExit(main())
