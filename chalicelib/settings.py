"""One validated, frozen settings model, read from the environment once."""

from __future__ import annotations

import os
import re
from collections.abc import Mapping
from functools import lru_cache
from typing import Annotated, Literal

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, ValidationError, field_validator, model_validator

MIB = 1024 * 1024


# A browser origin as the stage config writes it: scheme://host, an optional port, or
# ":*" for any port (loopback dev servers pick theirs); no path, lower case.
_ORIGIN = re.compile(r"https?://(\[[0-9a-f:]+\]|[a-z0-9]([a-z0-9.-]*[a-z0-9])?)(:(\d{1,5}|\*))?")


def _comma_separated(value: object) -> object:
    if isinstance(value, str):
        return tuple(part.strip() for part in value.split(",") if part.strip())
    return value


class SettingsError(RuntimeError):
    """The environment does not describe a usable stage."""


class Settings(BaseModel):
    """Stage configuration. Field names map to upper-case environment variables."""

    model_config = ConfigDict(frozen=True, extra="ignore")

    stage: str = "local"
    aws_region: str = "us-east-1"
    table_name: str = "ImageMetadata-local"
    upload_bucket: str = "image-service-uploads-local"
    image_bucket: str = "image-service-images-local"
    upload_queue_name: str = "image-service-uploads-local"
    events_topic_arn: str = "arn:aws:sns:us-east-1:123456789012:image-service-events-local"
    # The SQS queue (in the topic's account and region) SNS moves a webhook delivery to
    # when its retries are exhausted; provisioning creates it. Empty: no dead-letter queue.
    webhook_dlq_name: str = ""
    # Public base of rendition URLs: the CloudFront domain in AWS stages, the local S3
    # endpoint's bucket URL locally. Empty means "derive from the image bucket".
    image_base_url: str = ""
    # CloudFront distribution in front of the image bucket; empty: no CDN to invalidate.
    cdn_distribution_id: str = ""
    # Signs pagination cursors. Locally from the stage config; in AWS stages from the SSM
    # SecureString parameter that provisioning creates (read once, on first use).
    cursor_secret: str = ""
    cursor_secret_parameter: str = ""

    max_upload_bytes: int = Field(default=10 * MIB, ge=1, le=5 * 1024 * MIB)
    max_image_pixels: int = Field(default=50_000_000, ge=1)
    upload_url_ttl_seconds: int = Field(default=900, ge=1, le=7 * 24 * 3600)
    # How long after an upload window closes the sweeper waits before expiring the image.
    expiry_grace_seconds: int = Field(default=900, ge=0)
    # How old an unpublished event must be before the sweeper relays it (the processor
    # publishes at once; this keeps the two from racing into duplicate deliveries).
    outbox_relay_delay_seconds: int = Field(default=60, ge=0)
    # How long a record may stay ``processing`` before the sweeper fails it: longer than the
    # queue can keep retrying it (maxReceiveCount x visibility timeout, 5 x 360 s in AWS), so
    # it only catches deliveries that crashed, timed out or ran out of retries.
    processing_deadline_seconds: int = Field(default=3600, ge=60)
    # Wall time one image's processing may take (reading the upload, decoding, resizing,
    # encoding) before it ends ``failed`` with ``processing_timeout``: far above the slowest
    # real 50 MP photo (a few seconds), well inside the processor's 60 s Lambda timeout
    # (docs/reliability.md). A record of a batch starts only while this much time, plus a
    # margin for its writes, is left in the invocation (chalicelib/events/uploads.py).
    image_timeout_seconds: float = Field(default=30.0, gt=0, le=600)
    idempotency_ttl_seconds: int = Field(default=48 * 3600, ge=24 * 3600)
    use_transfer_acceleration: bool = False
    # AVIF renditions of the ladder beside the WebP ones: several times the WebP ladder's
    # encode time (docs/benchmarks.md), so off unless the stage asks for them.
    avif_renditions: bool = False

    # CloudWatch Embedded Metric Format lines on stdout.
    metrics_enabled: bool = True

    auth_mode: Literal["local", "jwks"] = "local"
    local_jwt_secret: str = ""
    jwt_issuer: str = "image-service-local"
    jwt_audience: str = "image-service"
    jwks_url: str = ""
    # Cognito app clients whose client-credentials tokens are accepted (comma-separated),
    # e.g. the legacy gallery's dual-write client.
    jwt_service_client_ids: str = ""

    # Origins whose pages may call the API from a browser (CORS, chalicelib/api/cors.py):
    # comma-separated "https://gallery.example.com", "http://localhost:*" (any port), or
    # "*" alone (any origin). Empty: no cross-origin caller.
    cors_allowed_origins: Annotated[tuple[str, ...], BeforeValidator(_comma_separated)] = ()

    @field_validator("cors_allowed_origins")
    @classmethod
    def _origins_are_exact(cls, origins: tuple[str, ...]) -> tuple[str, ...]:
        if "*" in origins and len(origins) > 1:
            raise ValueError("CORS_ALLOWED_ORIGINS: '*' (any origin) stands alone")
        for origin in origins:
            if origin != "*" and not _ORIGIN.fullmatch(origin):
                raise ValueError(
                    f"CORS_ALLOWED_ORIGINS: {origin!r} is not an origin (scheme://host[:port|:*], lower case, no path)"
                )
        return origins

    @model_validator(mode="after")
    def _auth_is_complete(self) -> Settings:
        if self.auth_mode == "local":
            if self.stage != "local":
                raise ValueError("auth_mode 'local' (HS256 shared secret) is only allowed in the local stage")
            if len(self.local_jwt_secret) < 32:
                raise ValueError("LOCAL_JWT_SECRET must be at least 32 characters")
        elif not self.jwks_url.startswith("https://"):
            raise ValueError("JWKS_URL must be an https URL when AUTH_MODE is 'jwks'")
        if not self.cursor_secret and not self.cursor_secret_parameter:
            raise ValueError("set CURSOR_SECRET or CURSOR_SECRET_PARAMETER (pagination cursors are signed)")
        if self.cursor_secret and len(self.cursor_secret) < 32:
            raise ValueError("CURSOR_SECRET must be at least 32 characters")
        return self

    @property
    def aws_endpoint_url(self) -> str | None:
        """The local AWS endpoint (moto); None in AWS, where boto3 finds the real one."""
        return os.environ.get("AWS_ENDPOINT_URL") or None

    @property
    def public_image_base_url(self) -> str:
        if self.image_base_url:
            return self.image_base_url.rstrip("/")
        if self.aws_endpoint_url:
            return f"{self.aws_endpoint_url.rstrip('/')}/{self.image_bucket}"
        return f"https://{self.image_bucket}.s3.{self.aws_region}.amazonaws.com"

    @classmethod
    def from_environ(cls, environ: Mapping[str, str]) -> Settings:
        values = {name: environ[name.upper()] for name in cls.model_fields if name.upper() in environ}
        try:
            return cls.model_validate(values)
        except ValidationError as exc:
            raise SettingsError(f"invalid stage configuration: {exc}") from exc


@lru_cache(maxsize=1)
def get_settings() -> Settings:
    """The process-wide settings, read once."""
    return Settings.from_environ(os.environ)
