"""What the repositories share about DynamoDB: item (de)serialisation, error translation,
the one update-expression builder (``update_arguments``) and the one consistent read
(``get_consistent``). Key shapes are ``chalicelib.repositories.keys``'s."""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping
from contextlib import contextmanager
from decimal import Decimal
from typing import TYPE_CHECKING, Any

from boto3.dynamodb.types import TypeDeserializer, TypeSerializer
from botocore.exceptions import BotoCoreError, ClientError

from chalicelib.errors import ConditionFailed, TransientFailure

if TYPE_CHECKING:
    from mypy_boto3_dynamodb import DynamoDBClient

_serializer = TypeSerializer()
_deserializer = TypeDeserializer()

# Error codes a retry may fix. botocore's standard retry mode has already retried these
# a few times by the time they reach us.
TRANSIENT_CODES = frozenset(
    {
        "ProvisionedThroughputExceededException",
        "ThrottlingException",
        "RequestLimitExceeded",
        "InternalServerError",
        "ServiceUnavailable",
        "TransactionInProgressException",
        "SlowDown",
        "InternalError",
        "Throttling",
        "KMSThrottlingException",
    }
)


def to_item(values: Mapping[str, Any]) -> dict[str, Any]:
    """Python values to DynamoDB attribute values; ``None`` attributes are left out."""
    return {name: _serializer.serialize(value) for name, value in values.items() if value is not None}


def to_value(value: Any) -> Any:
    return _serializer.serialize(value)


def from_item(item: Mapping[str, Any]) -> dict[str, Any]:
    return {name: _plain(_deserializer.deserialize(value)) for name, value in item.items()}


def _plain(value: Any) -> Any:
    if isinstance(value, Decimal):
        return int(value) if value == value.to_integral_value() else float(value)
    if isinstance(value, list):
        return [_plain(v) for v in value]
    if isinstance(value, dict):
        return {k: _plain(v) for k, v in value.items()}
    if isinstance(value, set):
        return sorted(_plain(v) for v in value)
    return value


def error_code(exc: ClientError) -> str:
    return str(exc.response.get("Error", {}).get("Code", ""))


def is_transient(exc: BaseException) -> bool:
    if isinstance(exc, ClientError):
        status = int(exc.response.get("ResponseMetadata", {}).get("HTTPStatusCode", 0) or 0)
        return error_code(exc) in TRANSIENT_CODES or status >= 500
    return isinstance(exc, BotoCoreError)  # connection errors, timeouts


@contextmanager
def translated_errors() -> Iterator[None]:
    """Turn AWS errors into domain errors: the one place that reads error codes."""
    try:
        yield
    except ClientError as exc:
        if error_code(exc) == "ConditionalCheckFailedException":
            raise ConditionFailed(error_code(exc), item=exc.response.get("Item")) from exc  # type: ignore[arg-type]
        if is_transient(exc):
            raise TransientFailure() from exc
        raise
    except BotoCoreError as exc:
        raise TransientFailure() from exc


def get_consistent(client: DynamoDBClient, table: str, key: Mapping[str, Any]) -> dict[str, Any] | None:
    """One strongly consistent GetItem: the item (DynamoDB attribute values), or None."""
    with translated_errors():
        response = client.get_item(TableName=table, Key=key, ConsistentRead=True)
    item = response.get("Item")
    return dict(item) if item else None


# The placeholders ``update_arguments`` makes (#n0, :v0, ...); a condition's own must differ.
_NAME_PREFIX = "#n"
_VALUE_PREFIX = ":v"


def update_arguments(
    set_values: Mapping[str, Any] | None = None,
    *,
    remove: Iterable[str] = (),
    keep_existing: Iterable[str] = (),
    increment: Iterable[str] = (),
    copy: Mapping[str, str] | None = None,
    condition: str | None = None,
    names: Mapping[str, str] | None = None,
    values: Mapping[str, Any] | None = None,
) -> dict[str, Any]:
    """The arguments of an UpdateItem, from what it sets and what it removes.

    ``set_values``: attribute -> value; a value of ``None`` removes the attribute instead.
    ``remove``: more attributes to remove. ``keep_existing``: those of ``set_values`` set
    only where the item has none yet (``if_not_exists``). ``increment``: attributes that go
    up by one. ``copy``: target -> source, the target set to the item's own source value.
    ``condition`` with the ``names`` and (Python) ``values`` it uses: the
    ConditionExpression, its placeholders chosen by the caller (not ``#n<digits>``/``:v<digits>``).

    Returns UpdateExpression, ExpressionAttributeNames, ExpressionAttributeValues (when
    any) and ConditionExpression (when given), to pass as keyword arguments; every
    attribute goes through a name placeholder, so reserved words need no care.
    """
    all_names: dict[str, str] = {}
    all_values: dict[str, Any] = {}
    kept = set(keep_existing)

    def name_of(attribute: str) -> str:
        placeholder = f"{_NAME_PREFIX}{len(all_names)}"
        all_names[placeholder] = attribute
        return placeholder

    def value_of(value: Any) -> str:
        placeholder = f"{_VALUE_PREFIX}{len(all_values)}"
        all_values[placeholder] = to_value(value)
        return placeholder

    assignments: list[str] = []
    removals: list[str] = []
    for attribute, value in (set_values or {}).items():
        name = name_of(attribute)
        if value is None:
            removals.append(name)
        elif attribute in kept:
            assignments.append(f"{name} = if_not_exists({name}, {value_of(value)})")
        else:
            assignments.append(f"{name} = {value_of(value)}")
    for attribute in increment:
        name = name_of(attribute)
        assignments.append(f"{name} = {name} + {value_of(1)}")
    for target, source in (copy or {}).items():
        assignments.append(f"{name_of(target)} = {name_of(source)}")
    removals += [name_of(attribute) for attribute in remove]
    if not assignments and not removals:
        raise ValueError("an update must set or remove something")
    clauses = []
    if assignments:
        clauses.append("SET " + ", ".join(assignments))
    if removals:
        clauses.append("REMOVE " + ", ".join(removals))
    arguments: dict[str, Any] = {"UpdateExpression": " ".join(clauses)}
    if condition is not None:
        arguments["ConditionExpression"] = condition
    for placeholder in [*(names or {}), *(values or {})]:
        if placeholder[2:].isdigit() and placeholder.startswith((_NAME_PREFIX, _VALUE_PREFIX)):
            raise ValueError(f"the condition's placeholder {placeholder} could clash with the update's")
    all_names.update(names or {})
    all_values.update({placeholder: to_value(value) for placeholder, value in (values or {}).items()})
    if all_names:
        arguments["ExpressionAttributeNames"] = all_names
    if all_values:
        arguments["ExpressionAttributeValues"] = all_values
    return arguments
