"""The stage's DynamoDB table, reached the way the stage's code reaches it.

``local``: the local stack's moto server (``AWS_ENDPOINT_URL``, default
http://127.0.0.1:4566) with fake credentials. AWS stages: the caller's credentials.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import TYPE_CHECKING

import boto3
from botocore.config import Config
from botocore.exceptions import BotoCoreError, ClientError, EndpointConnectionError, NoCredentialsError

from infra.stage_config import LOCAL_STAGE, apply_stage_environment
from migration.errors import MigrationError

if TYPE_CHECKING:
    from mypy_boto3_dynamodb import DynamoDBClient

LOCAL_ENDPOINT = "http://127.0.0.1:4566"


@dataclass(frozen=True)
class StageTable:
    stage: str
    table_name: str
    client: DynamoDBClient
    endpoint: str | None


def open_stage_table(stage: str, connections: int = 16) -> StageTable:
    """The stage's table, checked to exist; any problem is a one-line ``MigrationError``."""
    try:
        environment = apply_stage_environment(stage)
    except SystemExit as exc:  # stage_config's own message names the known stages
        raise MigrationError(str(exc)) from exc
    endpoint = os.environ.get("AWS_ENDPOINT_URL") or None
    if stage == LOCAL_STAGE:
        endpoint = endpoint or LOCAL_ENDPOINT
        for name, value in {"AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing"}.items():
            os.environ.setdefault(name, value)
    table_name = os.environ.get("TABLE_NAME") or environment["TABLE_NAME"]
    region = os.environ.get("AWS_REGION") or environment.get("AWS_REGION") or "us-east-1"
    config = Config(
        region_name=region,
        retries={"mode": "standard", "max_attempts": 5},
        connect_timeout=3,
        read_timeout=30,
        max_pool_connections=connections,
    )
    session = boto3.session.Session()
    client: DynamoDBClient = session.client("dynamodb", config=config, endpoint_url=endpoint)
    # A quick probe first: an unreachable endpoint is reported in seconds, not after the
    # full retry schedule the backfill itself uses.
    probe: DynamoDBClient = session.client(
        "dynamodb",
        config=config.merge(Config(retries={"mode": "standard", "max_attempts": 2}, connect_timeout=2)),
        endpoint_url=endpoint,
    )
    where = endpoint or f"AWS {region}"
    try:
        probe.describe_table(TableName=table_name)
    except EndpointConnectionError as exc:
        hint = " (is the local stack running? python -m local_stack)" if stage == LOCAL_STAGE else ""
        raise MigrationError(f"cannot reach DynamoDB at {where}{hint}") from exc
    except NoCredentialsError as exc:
        raise MigrationError(f"no AWS credentials for stage {stage!r} (set AWS_PROFILE or AWS_ACCESS_KEY_ID)") from exc
    except ClientError as exc:
        code = exc.response.get("Error", {}).get("Code", "")
        if code == "ResourceNotFoundException":
            raise MigrationError(
                f"table {table_name} does not exist at {where}; run: python scripts/provision.py --stage {stage}"
            ) from exc
        raise MigrationError(f"DynamoDB at {where} refused DescribeTable: {code}") from exc
    except BotoCoreError as exc:
        raise MigrationError(f"cannot use DynamoDB at {where}: {exc}") from exc
    return StageTable(stage=stage, table_name=table_name, client=client, endpoint=endpoint)
