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
import collections
import copy
import json
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


def serialise_moto_dynamodb() -> None:
    """Make moto's DynamoDB transactions atomic under concurrent requests, as DynamoDB's are.

    moto applies TransactWriteItems by snapshotting the tables and restoring the snapshot
    when a condition fails; with requests in parallel threads, a restore can undo or let
    through another request's write (seen: two images for one Idempotency-Key). One lock
    around moto's DynamoDB request handling restores the guarantee the service relies on.
    """
    from moto.dynamodb.responses import DynamoHandler

    if getattr(DynamoHandler.call_action, "serialised", False):
        return
    lock = threading.Lock()
    original = DynamoHandler.call_action

    def call_action(self: Any) -> Any:
        with lock:
            return original(self)

    call_action.serialised = True  # type: ignore[attr-defined]
    DynamoHandler.call_action = call_action  # type: ignore[method-assign]


# -- moto hot spots ------------------------------------------------------------------------
#
# Profiled (py-spy on the local stack during a 10,000-row backfill, docs/migration.md):
# most of moto's DynamoDB time went to work that grows with the item or the table, not
# with the request. Each patch below removes one such cost and nothing else: same results,
# same errors, same atomicity. They are written against moto 5.2.5 (requirements-dev.txt)
# and checked by tests/migration/test_local_stack_moto.py against the running stack.

# moto's item size limit (LimitedSizeDict: "between 409 and 410KB" measured, 405,000 bytes).
MOTO_ITEM_SIZE_LIMIT = 405_000
PARSED_CONDITIONS_KEPT = 1024
_moto_state = threading.local()  # per request thread: inside Query / inside a journaled transaction


def speed_up_moto_dynamodb() -> None:
    """Apply the patches below (idempotent). Call with ``serialise_moto_dynamodb``:
    the transaction journal relies on one DynamoDB request running at a time."""
    _item_size_checked_once()
    _query_without_presorting_the_table()
    _transactions_journal_their_items()
    _condition_parses_cached()
    _moto_module_list_cached()


def _item_size_checked_once() -> None:
    """``Item.__init__`` stored attributes one by one into a ``LimitedSizeDict``, whose
    ``__setitem__`` re-measures every attribute already stored: O(attributes²) per item
    written (34 % of moto's CPU in a BatchWriteItem). Measure once, same limit, same error."""
    from moto.dynamodb.exceptions import ItemSizeTooLarge
    from moto.dynamodb.models.dynamo_type import DynamoType, Item, LimitedSizeDict
    from moto.dynamodb.models.utilities import bytesize

    if getattr(Item.__init__, "patched", False):
        return

    def __init__(self: Any, hash_key: Any, range_key: Any, attrs: dict[str, Any]) -> None:
        self.hash_key = hash_key
        self.range_key = range_key
        values = {key: DynamoType(value) for key, value in attrs.items()}
        if sum(bytesize(key) + value.size() for key, value in values.items()) > MOTO_ITEM_SIZE_LIMIT:
            raise ItemSizeTooLarge
        self.attrs = LimitedSizeDict()
        dict.update(self.attrs, values)  # measured above; later updates still go through __setitem__

    __init__.patched = True  # type: ignore[attr-defined]
    Item.__init__ = __init__  # type: ignore[method-assign]


def _query_without_presorting_the_table() -> None:
    """``Table.query`` walks ``all_items()``, which sorts every item of the table by key
    (O(n log n) comparisons of ``DynamoType.cast_value``) before query filters and sorts
    its own matches (by the index's keys then the table's, a total order). The sweep's
    four GSI3 queries every 10 s kept an idle stack holding 100,000 items at 46 % of a
    core (5 % with this patch), under the lock above, so every request waited behind them.
    Inside a Query the pre-sort is skipped; Scan (whose pages follow that order) keeps it."""
    from moto.dynamodb.models.table import Table

    if getattr(Table.query, "patched", False):
        return
    original_query = Table.query
    original_all_items = Table.all_items

    def all_items(self: Any) -> Any:
        if not getattr(_moto_state, "in_query", False):
            return original_all_items(self)
        if self.range_key_attr:
            return [item for by_range in self.items.values() for item in by_range.values()]
        return list(self.items.values())

    def query(self: Any, *args: Any, **kwargs: Any) -> Any:
        _moto_state.in_query = True
        try:
            return original_query(self, *args, **kwargs)
        finally:
            _moto_state.in_query = False

    query.patched = True  # type: ignore[attr-defined]
    Table.all_items = all_items  # type: ignore[method-assign]
    Table.query = query  # type: ignore[method-assign]


def _transactions_journal_their_items() -> None:
    """TransactWriteItems made its rollback copy with ``copy.deepcopy`` of every table the
    transaction names, once per action: a 100-action transaction on a 100,000-item table
    copied 10 million items (in-process, one such transaction into a 10,000-item table took
    59 s of CPU; 0.03 s with this patch). A transaction only changes the items it names,
    so the copy is taken of those items instead, and put back whenever the transaction
    fails: where moto restores its table copy (cancellation, validation error) and also
    where it raises without restoring (a malformed action after applied ones). Tables with
    a stream keep moto's whole-table copy (it also rolls back the stream's records)."""
    from moto.dynamodb.models import DynamoDBBackend
    from moto.dynamodb.models.table import Table

    if getattr(DynamoDBBackend.transact_write_items, "patched", False):
        return
    original = DynamoDBBackend.transact_write_items

    def table_deepcopy(self: Any, memo: dict[int, Any]) -> Any:
        if getattr(_moto_state, "journaled", False):
            return self  # the journal below holds the copies; moto's "restore" is a no-op
        # What copy.deepcopy does for a class without __deepcopy__ (moto's own behaviour).
        cls: Any = type(self)
        copied = cls.__new__(cls)
        memo[id(self)] = copied
        copied.__dict__.update(copy.deepcopy(self.__dict__, memo))
        return copied

    def transact_write_items(self: Any, transact_items: list[dict[str, Any]]) -> None:
        journal = _transaction_journal(self, transact_items)
        if journal is None:
            return original(self, transact_items)
        _moto_state.journaled = True
        try:
            return original(self, transact_items)
        except BaseException:
            for table, hash_key, range_key, before in reversed(journal):
                _put_back(table, hash_key, range_key, before)
            raise
        finally:
            _moto_state.journaled = False

    transact_write_items.patched = True  # type: ignore[attr-defined]
    Table.__deepcopy__ = table_deepcopy  # type: ignore[attr-defined]
    DynamoDBBackend.transact_write_items = transact_write_items  # type: ignore[method-assign]


def _transaction_journal(backend: Any, transact_items: list[dict[str, Any]]) -> list[tuple[Any, Any, Any, Any]] | None:
    """(table, hash key, range key, deep copy of the item or None) for every item the
    transaction names; None when moto's whole-table copy must be used instead."""
    journal: list[tuple[Any, Any, Any, Any]] = []
    for entry in transact_items:
        for operation in entry.values():  # more than one is moto's error to raise
            if not isinstance(operation, dict):
                return None
            table = backend.tables.get(operation.get("TableName"))
            if table is None:
                continue  # moto copies only tables it finds by name, and neither do we
            if table.stream_shard is not None:
                return None
            try:
                hash_key, range_key = backend.get_keys_value(table, operation.get("Item") or operation.get("Key") or {})
            except Exception:
                return None  # a malformed action: let moto handle all of it its own way
            journal.append((table, hash_key, range_key, copy.deepcopy(_stored(table, hash_key, range_key))))
    return journal


def _stored(table: Any, hash_key: Any, range_key: Any) -> Any:
    if table.range_key_attr is None:
        return table.items.get(hash_key)
    by_range = table.items.get(hash_key)
    return by_range.get(range_key) if by_range else None


def _put_back(table: Any, hash_key: Any, range_key: Any, before: Any) -> None:
    if table.range_key_attr is None:
        if before is None:
            table.items.pop(hash_key, None)
        else:
            table.items[hash_key] = before
        return
    by_range = table.items[hash_key]
    if before is None:
        by_range.pop(range_key, None)
    else:
        by_range[range_key] = before


def _condition_parses_cached() -> None:
    """moto parses a ConditionExpression with a hand-written lexer and parser each time it
    needs it: three times per action of a TransactWriteItems (validation, the check, the
    put), twice per conditional PutItem; 39 % of moto's CPU during a conditional backfill.
    The parse is a pure function of (expression, names, values) and the tree it returns
    is never changed after it is built (its nodes only read the item), so the last
    results are kept and shared. Errors are not kept: a bad expression is parsed, and
    refused, every time."""
    from moto.dynamodb.comparisons import ConditionExpressionParser

    if getattr(ConditionExpressionParser.parse, "patched", False):
        return
    original = ConditionExpressionParser.parse
    parsed: collections.OrderedDict[str, tuple[Any, list[str], list[str]]] = collections.OrderedDict()
    guard = threading.Lock()

    def parse(self: Any) -> Any:
        if not self.condition_expression:
            return original(self)
        key = json.dumps(
            [self.condition_expression, self.expression_attribute_names, self.expression_attribute_values],
            sort_keys=True,
            default=repr,
        )
        with guard:
            hit = parsed.get(key)
            if hit is not None:
                parsed.move_to_end(key)
        if hit is None:
            tree = original(self)
            with guard:
                parsed[key] = (tree, list(self.expr_attr_names_found), list(self.expr_attr_values_found))
                while len(parsed) > PARSED_CONDITIONS_KEPT:
                    parsed.popitem(last=False)
            return tree
        tree, names_found, values_found = hit
        self.expr_attr_names_found.extend(names_found)
        self.expr_attr_values_found.extend(values_found)
        return tree

    parse.patched = True  # type: ignore[attr-defined]
    ConditionExpressionParser.parse = parse  # type: ignore[method-assign]


def _moto_module_list_cached() -> None:
    """Every request's dispatch (under the dispatcher's global lock) asked whether the
    service is one of moto's modules by listing moto's package directory and stat-ing each
    of its ~200 entries. The directory does not change while the server runs: list it once."""
    import functools

    import moto.backends

    if getattr(moto.backends.list_of_moto_modules, "patched", False):
        return
    original = moto.backends.list_of_moto_modules

    @functools.cache
    def list_of_moto_modules() -> tuple[str, ...]:
        return tuple(original())

    list_of_moto_modules.patched = True  # type: ignore[attr-defined]
    moto.backends.list_of_moto_modules = list_of_moto_modules


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
    moto_server = ThreadedMotoServer(ip_address=host, port=aws_port, verbose=False)
    moto_server.start()

    from scripts.provision import provision_stage

    report = provision_stage(LOCAL_STAGE, aws_endpoint)
    print(f"provisioned the local stage ({len(report.changes)} change(s))", flush=True)

    cdn = LocalCdn(host, cdn_port, environment["IMAGE_BUCKET"])
    cdn.start()

    from chalice import local as chalice_local
    from chalice.cli.factory import CLIFactory

    # http.server answers methods it has no do_* for with an HTML 501; API Gateway answers
    # them like any unrouted method, and so does the app's handler (405, API error body).
    handler_cls = chalice_local.ChaliceRequestHandler

    def any_method(self: Any, name: str) -> Any:
        if name.startswith("do_"):
            return self._generic_handle
        raise AttributeError(name)

    handler_cls.__getattr__ = any_method
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
