"""Read routing for the cutover: which users read from the Image Service.

    USE_IMAGE_SERVICE=true ROLLOUT_PERCENTAGE=10    # 10 % of users, the same ones everywhere

A user's place in the rollout is a stable hash of the user id (SHA-256, not Python's
per-process ``hash()``), so every process, host and restart sends the same user the
same way, and raising the percentage only ever adds users. A routed read falls back to
PostgreSQL whenever the Image Service did not really answer: a timeout, a refused or
dropped connection (also mid-body), a body that cannot be decoded or is not a JSON
object, 408, 429 or any 5xx (or any other status outside 2xx/4xx). Only a JSON object
with a 2xx or another 4xx (a 404 included) is an answer. Every decision is logged.
``ROLLOUT_PERCENTAGE=0`` or ``USE_IMAGE_SERVICE=false`` sends everyone to PostgreSQL at
once (instant rollback, no deploy).
"""

from __future__ import annotations

import hashlib
import logging
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from enum import StrEnum
from typing import Any
from urllib.parse import quote

import requests

from migration.dual_write import env_flag

ENV_ENABLED = "USE_IMAGE_SERVICE"
ENV_PERCENTAGE = "ROLLOUT_PERCENTAGE"
BUCKETS = 10_000  # percentages to two decimals

logger = logging.getLogger("gallery.read_routing")


def rollout_bucket(user_id: str) -> int:
    """0..9999, from the first 8 bytes of SHA-256(user id)."""
    digest = hashlib.sha256(user_id.encode("utf-8")).digest()
    return int.from_bytes(digest[:8], "big") % BUCKETS


@dataclass(frozen=True)
class RolloutConfig:
    use_image_service: bool = False
    percentage: float = 0.0

    def __post_init__(self) -> None:
        if not 0 <= self.percentage <= 100:
            raise ValueError(f"{ENV_PERCENTAGE} must be between 0 and 100, got {self.percentage}")

    @classmethod
    def from_environ(cls, environ: Mapping[str, str]) -> RolloutConfig:
        raw = environ.get(ENV_PERCENTAGE, "0").strip() or "0"
        try:
            percentage = float(raw)
        except ValueError as exc:
            raise ValueError(f"{ENV_PERCENTAGE} must be a number from 0 to 100, got {raw!r}") from exc
        return cls(use_image_service=env_flag(environ, ENV_ENABLED), percentage=percentage)

    def routes_to_image_service(self, user_id: str) -> bool:
        return self.use_image_service and rollout_bucket(user_id) < round(self.percentage * BUCKETS / 100)


class Route(StrEnum):
    IMAGE_SERVICE = "image_service"
    LEGACY = "legacy"  # not in the rollout
    FALLBACK = "fallback"  # in the rollout, but the Image Service failed


@dataclass(frozen=True)
class RoutedRead[T]:
    value: T
    route: Route
    reason: str


class ImageServiceUnavailable(Exception):
    """The Image Service did not answer (see the module docstring): the read falls back
    to PostgreSQL."""


# 4xx statuses that say "not now" rather than answer the request: they fall back.
_UNAVAILABLE_4XX = frozenset({408, 429})


@dataclass(frozen=True)
class ServiceAnswer:
    """What the Image Service answered: a JSON object with a 2xx, or a 4xx other than
    408/429 (a 404 is an answer, not a failure)."""

    status: int
    body: Any


class ImageServiceReader:
    """``GET /images/{id}`` on the Image Service with the user's own token."""

    def __init__(self, base_url: str, timeout: float = 1.0, session: requests.Session | None = None) -> None:
        self._base = base_url.rstrip("/")
        self._timeout = timeout
        self._session = session or requests.Session()

    def get_image(self, image_id: str, bearer_token: str) -> ServiceAnswer:
        url = f"{self._base}/images/{quote(image_id, safe='')}"
        try:
            response = self._session.get(
                url, timeout=self._timeout, headers={"Authorization": f"Bearer {bearer_token}"}
            )
        except requests.Timeout as exc:
            raise ImageServiceUnavailable("timeout") from exc
        except requests.exceptions.ChunkedEncodingError as exc:  # the connection dropped mid-body
            raise ImageServiceUnavailable("response cut off") from exc
        except requests.exceptions.ContentDecodingError as exc:
            raise ImageServiceUnavailable("undecodable response") from exc
        except requests.ConnectionError as exc:
            raise ImageServiceUnavailable("connection error") from exc
        except requests.RequestException as exc:  # any other transport failure: legacy can still answer
            raise ImageServiceUnavailable(f"request failed: {type(exc).__name__}") from exc
        status = response.status_code
        if not (200 <= status < 300 or 400 <= status < 500) or status in _UNAVAILABLE_4XX:
            raise ImageServiceUnavailable(f"HTTP {status}")
        try:
            body = response.json()
        except ValueError as exc:  # requests' JSONDecodeError, and a body that is not text
            raise ImageServiceUnavailable(f"HTTP {status} without a JSON body") from exc
        if not isinstance(body, dict):  # the service answers every request with a JSON object
            raise ImageServiceUnavailable(f"HTTP {status} without a JSON object")
        return ServiceAnswer(status=status, body=body)


class ReadRouter:
    def __init__(self, config: RolloutConfig) -> None:
        self.config = config

    def read[T](self, user_id: str, from_service: Callable[[], T], from_legacy: Callable[[], T]) -> RoutedRead[T]:
        """Route one read; ``from_service`` raises ``ImageServiceUnavailable`` to fall back."""
        bucket = rollout_bucket(user_id)
        if not self.config.routes_to_image_service(user_id):
            reason = "image service off" if not self.config.use_image_service else "not in rollout"
            return self._decided(user_id, bucket, Route.LEGACY, reason, from_legacy())
        try:
            value = from_service()
        except ImageServiceUnavailable as exc:
            return self._decided(user_id, bucket, Route.FALLBACK, str(exc), from_legacy())
        return self._decided(user_id, bucket, Route.IMAGE_SERVICE, "in rollout", value)

    def _decided[T](self, user_id: str, bucket: int, route: Route, reason: str, value: T) -> RoutedRead[T]:
        log = logger.warning if route is Route.FALLBACK else logger.info
        log(
            "read routed",
            extra={
                "userId": user_id,
                "bucket": bucket,
                "route": route.value,
                "reason": reason,
                "percentage": self.config.percentage,
            },
        )
        return RoutedRead(value=value, route=route, reason=reason)
