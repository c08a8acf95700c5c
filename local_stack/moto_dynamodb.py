"""moto's DynamoDB, made fit for the local stack: atomic transactions, and no work that
grows with the table or the item where DynamoDB has none.

``local_stack/supervisor.py`` applies both before it starts moto's server. Each patch is
narrow and keeps moto's results and errors; they are written against moto 5.2.5
(requirements-dev.txt) and checked against the running stack by
``tests/migration/test_local_stack_moto.py``.
"""

from __future__ import annotations

import collections
import copy
import json
import threading
from typing import Any

from local_stack.patched_versions import require

_RECHECK = "run tests/migration/test_local_stack_moto.py and re-read each patched moto function"


def serialise_moto_dynamodb() -> None:
    """Make moto's DynamoDB transactions atomic under concurrent requests, as DynamoDB's are.

    moto applies TransactWriteItems by snapshotting the tables and restoring the snapshot
    when a condition fails; with requests in parallel threads, a restore can undo or let
    through another request's write (seen: two images for one Idempotency-Key). One lock
    around moto's DynamoDB request handling restores the guarantee the service relies on.
    """
    require("moto", "local_stack/moto_dynamodb.py (DynamoHandler.call_action)", _RECHECK)
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
    require("moto", "local_stack/moto_dynamodb.py (DynamoDB models, conditions, module list)", _RECHECK)
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
