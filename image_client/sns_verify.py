"""Verify Amazon SNS messages delivered to an HTTP(S) webhook, and confirm subscriptions.

Subscribers of the Image Service event topic (API.md, "Events (SNS)") must check every POST
before trusting it. This module does that without AWS credentials; it needs only
``cryptography`` and ``requests`` and imports nothing else from the project, so a
subscriber may copy this one file. docs/webhooks.md explains each check and the attack it
blocks.

    message = json.loads(request_body)
    verified = verify_message(message, expected_topic_arn=TOPIC_ARN)
    if verified.type == "SubscriptionConfirmation":
        confirm_subscription(verified)
    elif verified.type == "Notification":
        handle(verified.json())  # the image event; de-duplicate on its eventId
"""

from __future__ import annotations

import base64
import json
import re
import threading
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any, Final, Literal, cast
from urllib.parse import urlsplit

import requests
from cryptography import x509
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import padding, rsa

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

MessageType = Literal["Notification", "SubscriptionConfirmation", "UnsubscribeConfirmation"]

DEFAULT_MAX_AGE: Final = timedelta(hours=1)
MIN_RSA_KEY_BITS: Final = 2048

# The signed fields of each message type, in the (alphabetical) order AWS signs them.
_NOTIFICATION_FIELDS: Final = ("Message", "MessageId", "Subject", "Timestamp", "TopicArn", "Type")
_CONFIRMATION_FIELDS: Final = ("Message", "MessageId", "SubscribeURL", "Timestamp", "Token", "TopicArn", "Type")
_SIGNED_FIELDS: Final[Mapping[str, tuple[str, ...]]] = {
    "Notification": _NOTIFICATION_FIELDS,
    "SubscriptionConfirmation": _CONFIRMATION_FIELDS,
    "UnsubscribeConfirmation": _CONFIRMATION_FIELDS,
}
_OPTIONAL_FIELDS: Final = frozenset({"Subject"})
_HASHES: Final[Mapping[str, Callable[[], hashes.HashAlgorithm]]] = {"1": hashes.SHA1, "2": hashes.SHA256}

_TOPIC_ARN: Final = re.compile(
    r"arn:aws(?:-[a-z]+)*:sns:(?P<region>[a-z]{2}(?:-[a-z]+)+-[0-9]+):[0-9]{12}:[A-Za-z0-9_-]{1,256}(?:\.fifo)?"
)
_TIMESTAMP: Final = re.compile(r"[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}:[0-9]{2}(?:\.[0-9]{1,6})?Z")
_URL_CHARACTERS: Final = re.compile(r"[!-\[\]-~]+")  # printable ASCII without space or backslash
_CERTIFICATE_PATH: Final = re.compile(r"/[A-Za-z0-9_.-]+\.pem")
_CONTROL_CHARACTER: Final = re.compile(r"[\x00-\x1f\x7f]")


class SnsVerificationError(Exception):
    """The message must not be trusted; ``reason`` says why (safe to log, not to echo to the sender)."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


@dataclass(frozen=True, slots=True)
class VerifiedMessage:
    """A message whose signature, topic, signing host and age have been checked.

    ``message_attributes`` and anything else outside the signed fields is passed through
    unverified: SNS does not sign it. Decide on signed data (``json()``) only.
    """

    type: MessageType
    message_id: str
    topic_arn: str
    subject: str | None
    message: str
    timestamp: datetime
    subscribe_url: str | None = None
    token: str | None = None
    message_attributes: Mapping[str, Any] = field(default_factory=dict)

    def json(self) -> dict[str, Any]:
        """``Message`` parsed as a JSON object (for a Notification: the image event of API.md).

        Raises ``ValueError`` if it is not one (a confirmation's Message is plain text).
        """
        value = json.loads(self.message)
        if not isinstance(value, dict):
            raise ValueError("Message is not a JSON object")
        return value


class CertificateFetcher:
    """GETs signing certificates over verified HTTPS: a short timeout, a size cap, no redirects,
    and an in-memory cache by URL (thread-safe, bounded).

    It does not check the URL: ``verify_message`` only calls it with one it has pinned.
    """

    def __init__(
        self,
        *,
        timeout: float = 5.0,
        max_bytes: int = 32 * 1024,
        max_entries: int = 64,
        session: requests.Session | None = None,
    ) -> None:
        self._timeout = timeout
        self._max_bytes = max_bytes
        self._max_entries = max_entries
        self._session = session or requests.Session()
        self._cache: dict[str, bytes] = {}
        self._lock = threading.Lock()

    def __call__(self, url: str) -> bytes:
        with self._lock:
            cached = self._cache.get(url)
        if cached is not None:
            return cached
        pem = self._download(url)
        with self._lock:
            if url not in self._cache and len(self._cache) >= self._max_entries:
                del self._cache[next(iter(self._cache))]
            self._cache[url] = pem
        return pem

    def _download(self, url: str) -> bytes:
        with self._session.get(url, timeout=self._timeout, stream=True, allow_redirects=False) as response:
            if response.status_code != 200:
                raise SnsVerificationError(f"signing certificate URL answered HTTP {response.status_code}")
            body = bytearray()
            for chunk in response.iter_content(chunk_size=4096):
                body += chunk
                if len(body) > self._max_bytes:
                    raise SnsVerificationError(f"signing certificate is larger than {self._max_bytes} bytes")
        return bytes(body)


default_certificate_fetcher: Final = CertificateFetcher()


def _https_get(url: str) -> requests.Response:
    response = requests.get(url, timeout=10, allow_redirects=False)
    if response.status_code != 200:
        raise requests.HTTPError(f"{url.split('?')[0]} answered HTTP {response.status_code}", response=response)
    return response


def _topic_region(topic_arn: str) -> str:
    match = _TOPIC_ARN.fullmatch(topic_arn)
    if match is None:
        raise SnsVerificationError("TopicArn is not an SNS topic ARN")
    return match["region"]


def signing_host(topic_arn: str) -> str:
    """The only host SNS signs from (and sends SubscribeURLs on) for this topic's region."""
    region = _topic_region(topic_arn)
    return f"sns.{region}.amazonaws.com.cn" if region.startswith("cn-") else f"sns.{region}.amazonaws.com"


def string_to_sign(message: Mapping[str, str]) -> str:
    """The canonical "Key\\nValue\\n" string AWS signs, from the raw (JSON-decoded) field values."""
    fields = _SIGNED_FIELDS.get(message.get("Type", ""))
    if fields is None:
        raise SnsVerificationError("Type is not a known SNS message type")
    return "".join(f"{name}\n{message[name]}\n" for name in fields if name in message)


def verify_message(
    message: Mapping[str, Any],
    *,
    expected_topic_arn: str,
    region: str | None = None,
    fetch_certificate: Callable[[str], bytes] = default_certificate_fetcher,
    now: Callable[[], datetime] | None = None,
    max_age: timedelta | None = DEFAULT_MAX_AGE,
) -> VerifiedMessage:
    """Check an SNS HTTP(S) delivery (the JSON-decoded POST body) and return its signed content.

    Raises ``SnsVerificationError`` unless all of these hold: the Type is known; every signed
    field is a string and, except Message, a single line; TopicArn is ``expected_topic_arn``
    (and in ``region`` if given); SigningCertURL (and SubscribeURL) are https URLs on the
    topic region's SNS host; SignatureVersion is "1" (SHA1withRSA) or "2" (SHA256withRSA);
    Timestamp is at most ``max_age`` old (``None`` skips that check); the certificate is a
    currently valid X.509 RSA certificate whose key signed the canonical string.
    """
    if not isinstance(message, Mapping):
        raise SnsVerificationError("message is not a JSON object")
    message_type = _string(message, "Type")
    fields = _SIGNED_FIELDS.get(message_type)
    if fields is None:
        raise SnsVerificationError("Type is not a known SNS message type")
    signed = {
        name: _string(message, name) for name in fields if not (name in _OPTIONAL_FIELDS and message.get(name) is None)
    }
    for name, value in signed.items():
        # One line each, so no field can absorb its neighbours and still match the signed string.
        if name != "Message" and _CONTROL_CHARACTER.search(value):
            raise SnsVerificationError(f"{name} contains a control character")

    if signed["TopicArn"] != expected_topic_arn:
        raise SnsVerificationError("TopicArn is not the expected topic")
    if region is not None and _topic_region(signed["TopicArn"]) != region:
        raise SnsVerificationError(f"TopicArn is not in region {region}")
    host = signing_host(signed["TopicArn"])
    certificate_url = _string(message, "SigningCertURL")
    _check_sns_url(certificate_url, host, "SigningCertURL")
    if "?" in certificate_url or not _CERTIFICATE_PATH.fullmatch(urlsplit(certificate_url).path):
        raise SnsVerificationError("SigningCertURL is not a .pem file")
    if "SubscribeURL" in signed:
        _check_sns_url(signed["SubscribeURL"], host, "SubscribeURL")

    hash_algorithm = _HASHES.get(_string(message, "SignatureVersion"))
    if hash_algorithm is None:
        raise SnsVerificationError("SignatureVersion is not 1 or 2")
    signature = _decode_signature(_string(message, "Signature"))
    try:
        signed_bytes = string_to_sign(signed).encode("utf-8")
    except UnicodeEncodeError as exc:
        raise SnsVerificationError("a signed field is not valid Unicode") from exc

    timestamp = _parse_timestamp(signed["Timestamp"])
    current = _current_time(now)
    if max_age is not None and current - timestamp > max_age:
        raise SnsVerificationError(f"Timestamp is older than {max_age}")

    public_key = _signing_key(fetch_certificate, certificate_url, current)
    try:
        public_key.verify(signature, signed_bytes, padding.PKCS1v15(), hash_algorithm())
    except InvalidSignature as exc:
        raise SnsVerificationError("Signature does not match the signed fields") from exc

    attributes = message.get("MessageAttributes")
    return VerifiedMessage(
        type=cast(MessageType, message_type),
        message_id=signed["MessageId"],
        topic_arn=signed["TopicArn"],
        subject=signed.get("Subject"),
        message=signed["Message"],
        timestamp=timestamp,
        subscribe_url=signed.get("SubscribeURL"),
        token=signed.get("Token"),
        message_attributes=dict(attributes) if isinstance(attributes, Mapping) else {},
    )


def confirm_subscription(message: VerifiedMessage, *, get: Callable[[str], Any] = _https_get) -> None:
    """Confirm a subscription by GETting the SubscribeURL of a message ``verify_message`` returned.

    The URL is checked again (a ``VerifiedMessage`` can be built by hand). The default ``get``
    raises ``requests.RequestException`` if SNS does not answer 200.
    """
    if message.type != "SubscriptionConfirmation" or message.subscribe_url is None:
        raise SnsVerificationError("not a SubscriptionConfirmation")
    _check_sns_url(message.subscribe_url, signing_host(message.topic_arn), "SubscribeURL")
    get(message.subscribe_url)


def _string(message: Mapping[str, Any], name: str) -> str:
    value = message.get(name)
    if value is None:
        raise SnsVerificationError(f"{name} is missing")
    if not isinstance(value, str):
        raise SnsVerificationError(f"{name} is not a string")
    return value


def _check_sns_url(url: str, host: str, name: str) -> None:
    # Only plain printable ASCII, so the URL fetched is the URL checked (parsers strip or
    # reinterpret whitespace, controls and backslashes differently).
    if not _URL_CHARACTERS.fullmatch(url):
        raise SnsVerificationError(f"{name} contains characters not allowed here")
    try:
        parts = urlsplit(url)
    except ValueError as exc:  # e.g. a bracketed host that is no IPv6 address
        raise SnsVerificationError(f"{name} is not a valid URL") from exc
    if parts.scheme != "https":
        raise SnsVerificationError(f"{name} is not https")
    # The whole authority must be the host: no userinfo, no other port, no look-alike or IP.
    if parts.netloc.lower() not in (host, f"{host}:443"):
        raise SnsVerificationError(f"{name} is not on {host}")
    if "#" in url:
        raise SnsVerificationError(f"{name} has a fragment")


def _decode_signature(value: str) -> bytes:
    try:
        return base64.b64decode(value, validate=True)
    except ValueError as exc:  # binascii.Error, or non-ASCII text
        raise SnsVerificationError("Signature is not base64") from exc


def _parse_timestamp(value: str) -> datetime:
    if not _TIMESTAMP.fullmatch(value):
        raise SnsVerificationError("Timestamp is not an ISO 8601 UTC time")
    try:
        return datetime.fromisoformat(value)
    except ValueError as exc:
        raise SnsVerificationError("Timestamp is not a valid time") from exc


def _current_time(now: Callable[[], datetime] | None) -> datetime:
    current = now() if now is not None else datetime.now(UTC)
    if current.tzinfo is None:
        raise ValueError("now() must return a timezone-aware datetime")
    return current


def _signing_key(fetch: Callable[[str], bytes], url: str, current: datetime) -> rsa.RSAPublicKey:
    try:
        pem = fetch(url)
    except SnsVerificationError:
        raise
    except Exception as exc:  # any failure to fetch means the message cannot be verified
        raise SnsVerificationError(f"could not fetch the signing certificate ({type(exc).__name__})") from exc
    try:
        certificate = x509.load_pem_x509_certificate(pem)
    except (TypeError, ValueError) as exc:
        raise SnsVerificationError("signing certificate is not an X.509 PEM certificate") from exc
    if not certificate.not_valid_before_utc <= current <= certificate.not_valid_after_utc:
        raise SnsVerificationError("signing certificate is expired or not yet valid")
    key = certificate.public_key()
    if not isinstance(key, rsa.RSAPublicKey) or key.key_size < MIN_RSA_KEY_BITS:
        raise SnsVerificationError(f"signing certificate does not hold an RSA key of at least {MIN_RSA_KEY_BITS} bits")
    return key
