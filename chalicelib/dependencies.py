"""Wiring: cached getters that build each service once per process, on first use."""

from __future__ import annotations

from datetime import timedelta
from functools import lru_cache

from chalicelib import aws
from chalicelib.auth import JwksTokenVerifier, LocalTokenVerifier, TokenVerifier
from chalicelib.metrics import NO_METRICS, EmfMetrics, Metrics
from chalicelib.repositories.cdn import CdnInvalidator
from chalicelib.repositories.duplicates import DuplicateIndex
from chalicelib.repositories.events import EventPublisher
from chalicelib.repositories.images import ImageQueries, ImageRepository
from chalicelib.repositories.imports import ImportRepository
from chalicelib.repositories.queue import UploadQueue
from chalicelib.repositories.secrets import read_secret
from chalicelib.repositories.storage import ObjectStore
from chalicelib.repositories.webhooks import SubscriptionGateway, WebhookRepository
from chalicelib.services.announcer import EventAnnouncer
from chalicelib.services.cursors import CursorCodec
from chalicelib.services.duplicates import DuplicateFinder
from chalicelib.services.images import ImageService
from chalicelib.services.imports import ImportService
from chalicelib.services.presenter import Presenter
from chalicelib.services.processing import ProcessingService
from chalicelib.services.sweeper import Sweeper
from chalicelib.services.uploads import UploadService
from chalicelib.services.webhooks import WebhookService
from chalicelib.settings import get_settings


@lru_cache(maxsize=1)
def token_verifier() -> TokenVerifier:
    settings = get_settings()
    if settings.auth_mode == "local":
        return LocalTokenVerifier(settings.local_jwt_secret, settings.jwt_issuer, settings.jwt_audience)
    service_clients = frozenset(c.strip() for c in settings.jwt_service_client_ids.split(",") if c.strip())
    return JwksTokenVerifier(settings.jwks_url, settings.jwt_issuer, settings.jwt_audience, service_clients)


@lru_cache(maxsize=1)
def metrics() -> Metrics:
    settings = get_settings()
    return EmfMetrics(settings.stage) if settings.metrics_enabled else NO_METRICS


@lru_cache(maxsize=1)
def image_repository() -> ImageRepository:
    return ImageRepository(aws.dynamodb(), get_settings().table_name)


@lru_cache(maxsize=1)
def object_store() -> ObjectStore:
    settings = get_settings()
    return ObjectStore(aws.s3(), aws.s3_presigner(), settings.upload_bucket, settings.image_bucket)


@lru_cache(maxsize=1)
def duplicates() -> DuplicateFinder:
    return DuplicateFinder(image_repository(), DuplicateIndex(aws.dynamodb(), get_settings().table_name))


@lru_cache(maxsize=1)
def presenter() -> Presenter:
    return Presenter(get_settings().public_image_base_url)


@lru_cache(maxsize=1)
def upload_service() -> UploadService:
    return UploadService(image_repository(), object_store(), get_settings(), metrics=metrics())


@lru_cache(maxsize=1)
def cursor_codec() -> CursorCodec:
    settings = get_settings()
    secret = settings.cursor_secret or read_secret(aws.ssm(), settings.cursor_secret_parameter)
    return CursorCodec(secret)


def _cdn() -> CdnInvalidator | None:
    settings = get_settings()
    return CdnInvalidator(aws.cloudfront(), settings.cdn_distribution_id) if settings.cdn_distribution_id else None


@lru_cache(maxsize=1)
def image_service() -> ImageService:
    queries = ImageQueries(aws.dynamodb(), get_settings().table_name)
    # The cursor secret is read on the first list, not on every cold start.
    return ImageService(image_repository(), queries, object_store(), cursor_codec, _cdn(), duplicates=duplicates())


@lru_cache(maxsize=1)
def event_publisher() -> EventPublisher:
    return EventPublisher(aws.sns(), get_settings().events_topic_arn)


@lru_cache(maxsize=1)
def processing_service() -> ProcessingService:
    return ProcessingService(
        image_repository(),
        object_store(),
        event_publisher(),
        presenter(),
        get_settings(),
        metrics=metrics(),
        duplicates=duplicates(),
    )


@lru_cache(maxsize=1)
def sweeper() -> Sweeper:
    settings = get_settings()
    announcer = EventAnnouncer(image_repository(), event_publisher(), presenter(), metrics())
    return Sweeper(
        image_repository(),
        object_store(),
        announcer,
        UploadQueue(aws.sqs(), settings.upload_queue_name),
        grace=timedelta(seconds=settings.expiry_grace_seconds),
        processing_deadline=timedelta(seconds=settings.processing_deadline_seconds),
        queries=ImageQueries(aws.dynamodb(), settings.table_name),
        cdn=_cdn(),
        relay_delay=timedelta(seconds=settings.outbox_relay_delay_seconds),
        metrics=metrics(),
        duplicates=duplicates(),
    )


@lru_cache(maxsize=1)
def webhook_service() -> WebhookService:
    settings = get_settings()
    return WebhookService(
        WebhookRepository(aws.dynamodb(), settings.table_name),
        SubscriptionGateway(aws.sns(), settings.events_topic_arn, settings.webhook_dlq_name),
        local_stage=settings.stage == "local",
    )


@lru_cache(maxsize=1)
def import_service() -> ImportService:
    return ImportService(ImportRepository(aws.dynamodb(), get_settings().table_name))


def reset() -> None:
    """Forget settings, clients and services (tests change the environment)."""
    for getter in (
        metrics,
        event_publisher,
        token_verifier,
        image_repository,
        duplicates,
        object_store,
        presenter,
        upload_service,
        cursor_codec,
        image_service,
        processing_service,
        sweeper,
        webhook_service,
        import_service,
    ):
        getter.cache_clear()
    aws.reset_clients()
    get_settings.cache_clear()
