"""Helpers for webhook subscribers of the Image Service event topic (see docs/webhooks.md)."""

from .sns_verify import (
    DEFAULT_MAX_AGE,
    CertificateFetcher,
    MessageType,
    SnsVerificationError,
    VerifiedMessage,
    confirm_subscription,
    default_certificate_fetcher,
    signing_host,
    string_to_sign,
    verify_message,
)

__all__ = [
    "DEFAULT_MAX_AGE",
    "CertificateFetcher",
    "MessageType",
    "SnsVerificationError",
    "VerifiedMessage",
    "confirm_subscription",
    "default_certificate_fetcher",
    "signing_host",
    "string_to_sign",
    "verify_message",
]
