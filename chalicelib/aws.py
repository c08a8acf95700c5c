"""boto3 client factories: one place for endpoints, timeouts and retry policy.

Clients are made on first use, never at import time (cold starts, and tests set the
environment before the first call). botocore's ``standard`` retry mode retries
throttling, 5xx and timeouts with exponential backoff and jitter, bounded in attempts.
"""

from __future__ import annotations

import threading
from functools import lru_cache
from typing import TYPE_CHECKING, Any

import boto3
from botocore.config import Config

from chalicelib.settings import Settings, get_settings

if TYPE_CHECKING:
    from botocore.config import _RetryDict
    from mypy_boto3_cloudfront import CloudFrontClient
    from mypy_boto3_dynamodb import DynamoDBClient
    from mypy_boto3_s3 import S3Client
    from mypy_boto3_sns import SNSClient
    from mypy_boto3_sqs import SQSClient
    from mypy_boto3_ssm import SSMClient

_session_lock = threading.Lock()

# Bounded retries with exponential backoff and jitter for throttling, 5xx and timeouts.
_RETRIES: _RetryDict = {"mode": "standard", "max_attempts": 4}


def client_config(settings: Settings, s3_options: dict[str, Any] | None = None) -> Config:
    """Timeouts and retries for every client; ``s3_options`` marks an S3 client."""
    extra: dict[str, Any] = {}
    if s3_options is not None:
        s3 = dict(s3_options)
        if settings.aws_endpoint_url and not s3.get("use_accelerate_endpoint"):
            s3.setdefault("addressing_style", "path")  # the local endpoint is an IP address
        # Presigned POST policies must be SigV4 in every region.
        extra = {"s3": s3, "signature_version": "s3v4"}
    return Config(
        region_name=settings.aws_region,
        retries=_RETRIES,
        connect_timeout=3,
        read_timeout=20,
        max_pool_connections=32,
        **extra,
    )


@lru_cache(maxsize=1)
def _session() -> boto3.session.Session:
    return boto3.session.Session()


def _client(service: str, config: Config) -> Any:
    settings = get_settings()
    with _session_lock:  # boto3 sessions are not thread-safe while creating clients
        return _session().client(service, config=config, endpoint_url=settings.aws_endpoint_url)  # type: ignore[call-overload]


@lru_cache(maxsize=1)
def dynamodb() -> DynamoDBClient:
    client: DynamoDBClient = _client("dynamodb", client_config(get_settings()))
    return client


@lru_cache(maxsize=1)
def s3() -> S3Client:
    client: S3Client = _client("s3", client_config(get_settings(), s3_options={}))
    return client


@lru_cache(maxsize=1)
def s3_presigner() -> S3Client:
    """The client that signs upload URLs: accelerated where the stage enables it."""
    settings = get_settings()
    options: dict[str, Any] = {"use_accelerate_endpoint": True} if settings.use_transfer_acceleration else {}
    client: S3Client = _client("s3", client_config(settings, s3_options=options))
    return client


@lru_cache(maxsize=1)
def sns() -> SNSClient:
    client: SNSClient = _client("sns", client_config(get_settings()))
    return client


@lru_cache(maxsize=1)
def cloudfront() -> CloudFrontClient:
    client: CloudFrontClient = _client("cloudfront", client_config(get_settings()))
    return client


@lru_cache(maxsize=1)
def ssm() -> SSMClient:
    client: SSMClient = _client("ssm", client_config(get_settings()))
    return client


@lru_cache(maxsize=1)
def sqs() -> SQSClient:
    client: SQSClient = _client("sqs", client_config(get_settings()))
    return client


def reset_clients() -> None:
    """Forget every cached client (tests switch endpoints and credentials)."""
    for factory in (dynamodb, s3, s3_presigner, sns, sqs, cloudfront, ssm, _session):
        factory.cache_clear()
