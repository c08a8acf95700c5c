"""verify_message and confirm_subscription: SNS HTTP(S) deliveries as a webhook subscriber receives them.

No network: keys and certificates are made here, and the certificate fetcher is injected. The
canonical string is built here independently of the module, from the AWS documentation.
"""

from __future__ import annotations

import base64
import io
import json
from collections.abc import Callable, Mapping
from datetime import UTC, datetime, timedelta
from functools import cache
from typing import Any

import pytest
import requests
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, padding, rsa
from cryptography.x509.oid import NameOID
from hypothesis import given, settings
from hypothesis import strategies as st
from urllib3 import HTTPResponse

from image_client.sns_verify import (
    CertificateFetcher,
    SnsVerificationError,
    VerifiedMessage,
    confirm_subscription,
    verify_message,
)

NOW = datetime(2026, 11, 22, 10, 0, tzinfo=UTC)
TOPIC_ARN = "arn:aws:sns:us-east-1:123456789012:image-service-events-prod"
HOST = "sns.us-east-1.amazonaws.com"
CERT_URL = f"https://{HOST}/SimpleNotificationService-abc.pem"
SUBSCRIBE_URL = f"https://{HOST}/?Action=ConfirmSubscription&TopicArn={TOPIC_ARN}&Token=2336412f37fb"
EVENT = {
    "eventId": "01JD3ZK4Q8N6W2T1R5Y7B9C0EV",
    "type": "image.completed",
    "occurredAt": "2026-11-22T09:58:59Z",
    "image": {"id": "01JD3ZK4Q8N6W2T1R5Y7B9C0DE", "userId": "alice", "status": "completed", "width": 800},
}
NOTIFICATION_FIELDS = ("Message", "MessageId", "Subject", "Timestamp", "TopicArn", "Type")
CONFIRMATION_FIELDS = ("Message", "MessageId", "SubscribeURL", "Timestamp", "Token", "TopicArn", "Type")
DIGESTS: dict[str, Callable[[], hashes.HashAlgorithm]] = {"1": hashes.SHA1, "2": hashes.SHA256}


# --- keys, certificates and signed messages ---------------------------------------------------


@cache
def sns_key() -> rsa.RSAPrivateKey:
    return rsa.generate_private_key(public_exponent=65537, key_size=2048)


@cache
def attacker_key() -> rsa.RSAPrivateKey:
    return rsa.generate_private_key(public_exponent=65537, key_size=2048)


def certificate_pem(
    key: rsa.RSAPrivateKey | ec.EllipticCurvePrivateKey | None = None,
    *,
    valid_from: datetime = NOW - timedelta(days=1),
    valid_until: datetime = NOW + timedelta(days=365),
) -> bytes:
    key = key or sns_key()
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "sns.amazonaws.com")])
    certificate = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(valid_from)
        .not_valid_after(valid_until)
        .sign(key, hashes.SHA256())
    )
    return certificate.public_bytes(serialization.Encoding.PEM)


@cache
def sns_certificate() -> bytes:
    return certificate_pem()


def canonical(fields: Mapping[str, str]) -> bytes:
    names = NOTIFICATION_FIELDS if fields["Type"] == "Notification" else CONFIRMATION_FIELDS
    return "".join(f"{name}\n{fields[name]}\n" for name in names if name in fields).encode()


def signed(
    fields: Mapping[str, str],
    *,
    version: str = "1",
    key: rsa.RSAPrivateKey | None = None,
    cert_url: str = CERT_URL,
) -> dict[str, Any]:
    signature = (key or sns_key()).sign(canonical(fields), padding.PKCS1v15(), DIGESTS[version]())
    return {
        **fields,
        "SignatureVersion": version,
        "Signature": base64.b64encode(signature).decode(),
        "SigningCertURL": cert_url,
    }


def notification_fields(
    *, subject: str | None = None, topic_arn: str = TOPIC_ARN, age: timedelta = timedelta(minutes=1)
) -> dict[str, str]:
    fields = {
        "Type": "Notification",
        "MessageId": "22b80b92-fdea-4c2c-8f9d-bdfb0c7bf324",
        "TopicArn": topic_arn,
        "Message": json.dumps(EVENT),
        "Timestamp": (NOW - age).strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "Z",
    }
    if subject is not None:
        fields["Subject"] = subject
    return fields


def notification(*, subject: str | None = None, version: str = "1", **options: Any) -> dict[str, Any]:
    message = signed(notification_fields(subject=subject), version=version, **options)
    message["UnsubscribeURL"] = f"https://{HOST}/?Action=Unsubscribe&SubscriptionArn={TOPIC_ARN}:c9135db0"
    message["MessageAttributes"] = {
        "eventType": {"Type": "String", "Value": "image.completed"},
        "userId": {"Type": "String", "Value": "alice"},
    }
    return message


def confirmation_fields(
    message_type: str = "SubscriptionConfirmation", subscribe_url: str = SUBSCRIBE_URL
) -> dict[str, str]:
    return {
        "Type": message_type,
        "MessageId": "165545c9-2a5c-472c-8df2-7ff2be2b3b1b",
        "Token": "2336412f37fb687f5d51e6e241d164b0533302ec696efc8f113cd2252ce8a925",
        "TopicArn": TOPIC_ARN,
        "Message": f"You have chosen to subscribe to the topic {TOPIC_ARN}.\nTo confirm, visit the SubscribeURL.",
        "SubscribeURL": subscribe_url,
        "Timestamp": "2026-11-22T09:59:30.000Z",
    }


def serve(pem: bytes, at: str | None = CERT_URL) -> Callable[[str], bytes]:
    """A certificate fetcher serving ``pem`` at ``at`` (at every URL when None, as an attacker's host would)."""

    def fetch(url: str) -> bytes:
        if at is not None and url != at:
            raise LookupError(url)
        return pem

    return fetch


def verify(
    message: Mapping[str, Any],
    *,
    fetch: Callable[[str], bytes] | None = None,
    **options: Any,
) -> VerifiedMessage:
    return verify_message(
        message,
        expected_topic_arn=options.pop("expected_topic_arn", TOPIC_ARN),
        fetch_certificate=fetch or serve(sns_certificate()),
        now=lambda: NOW,
        **options,
    )


def rejected(message: Mapping[str, Any], reason: str, **options: Any) -> None:
    """Verification fails for ``reason`` even though any URL serves the signer's certificate."""
    with pytest.raises(SnsVerificationError, match=reason):
        verify(message, fetch=options.pop("fetch", serve(sns_certificate(), at=None)), **options)


# --- valid messages ---------------------------------------------------------------------------


def test_a_valid_version_1_notification_verifies_and_exposes_its_signed_fields() -> None:
    verified = verify(notification(version="1"))

    assert verified.type == "Notification"
    assert verified.message_id == "22b80b92-fdea-4c2c-8f9d-bdfb0c7bf324"
    assert verified.topic_arn == TOPIC_ARN
    assert verified.subject is None
    assert verified.message == json.dumps(EVENT)
    assert verified.timestamp == NOW - timedelta(minutes=1)


def test_a_valid_version_2_notification_verifies() -> None:
    assert verify(notification(version="2")).type == "Notification"


def test_a_notification_with_a_subject_verifies_and_keeps_it() -> None:
    assert verify(notification(subject="image.completed")).subject == "image.completed"


def test_json_gives_the_image_event_and_message_attributes_pass_through() -> None:
    verified = verify(notification())

    assert verified.json() == EVENT
    assert verified.message_attributes["userId"] == {"Type": "String", "Value": "alice"}


def test_json_of_a_message_that_is_not_a_json_object_is_a_value_error() -> None:
    with pytest.raises(ValueError, match="Expecting value"):
        verify(signed(confirmation_fields())).json()
    with pytest.raises(ValueError, match="not a JSON object"):
        verify(signed({**notification_fields(), "Message": "[]"})).json()


def test_a_china_region_topic_verifies_against_the_amazonaws_com_cn_host() -> None:
    topic = "arn:aws-cn:sns:cn-north-1:123456789012:image-service-events"
    url = "https://sns.cn-north-1.amazonaws.com.cn/SimpleNotificationService-abc.pem"
    message = signed(notification_fields(topic_arn=topic), cert_url=url)

    assert verify(message, expected_topic_arn=topic, fetch=serve(sns_certificate(), at=url)).topic_arn == topic
    rejected(
        signed(notification_fields(topic_arn=topic), cert_url=url.replace(".com.cn", ".com")),
        "SigningCertURL",
        expected_topic_arn=topic,
    )


def test_the_default_port_443_is_accepted() -> None:
    url = f"https://{HOST}:443/SimpleNotificationService-abc.pem"

    assert verify(notification(cert_url=url), fetch=serve(sns_certificate(), at=url)).type == "Notification"


# --- the signing certificate URL --------------------------------------------------------------


@pytest.mark.parametrize(
    "url",
    [
        "https://evil.com/SimpleNotificationService-abc.pem",
        "https://s3.amazonaws.com/SimpleNotificationService-abc.pem",
        "https://sns.us-east-1.amazonaws.com.evil.com/SimpleNotificationService-abc.pem",
        "https://evil.com/sns.us-east-1.amazonaws.com/SimpleNotificationService-abc.pem",
        "https://evilsns.us-east-1.amazonaws.com/SimpleNotificationService-abc.pem",
        "https://evil.sns.us-east-1.amazonaws.com/SimpleNotificationService-abc.pem",
        "https://sns.us-east-1.amazonaws.com./SimpleNotificationService-abc.pem",
        "https://sns.us-east-1.amazonaws.com@evil.com/SimpleNotificationService-abc.pem",
        "https://sns.us-east-1.amazonaws.com:x@evil.com/SimpleNotificationService-abc.pem",
        "https://user@sns.us-east-1.amazonaws.com/SimpleNotificationService-abc.pem",
        "https://sns.us-east-1.amazonaws.com:8443/SimpleNotificationService-abc.pem",
        "https://sns.us-east-1.amazonaws.com\\@evil.com/SimpleNotificationService-abc.pem",
        "https://sns.us-east-1.amazonaws.com%2eevil.com/SimpleNotificationService-abc.pem",
        "https://sns.us-east-1.amazonaws.com\t.evil.com/SimpleNotificationService-abc.pem",
        "https://sns.us-east-1.amazon\taws.com/SimpleNotificationService-abc.pem",
        " https://sns.us-east-1.amazonaws.com/SimpleNotificationService-abc.pem",
        "https://sns.us-east-1.amazonaws.com/SimpleNotificationService-abc.pem\n",
        "https://54.239.28.85/SimpleNotificationService-abc.pem",
        "https://[::1]/SimpleNotificationService-abc.pem",
        "https://[sns.us-east-1.amazonaws.com]/SimpleNotificationService-abc.pem",  # urlsplit: ValueError
        "https://[::1/SimpleNotificationService-abc.pem",
        "http://sns.us-east-1.amazonaws.com/SimpleNotificationService-abc.pem",
        "ftp://sns.us-east-1.amazonaws.com/SimpleNotificationService-abc.pem",
        "//sns.us-east-1.amazonaws.com/SimpleNotificationService-abc.pem",
        "sns.us-east-1.amazonaws.com/SimpleNotificationService-abc.pem",
        "",
    ],
)
def test_a_signing_certificate_url_off_the_pinned_host_is_rejected(url: str) -> None:
    rejected(notification(cert_url=url), "SigningCertURL")


@pytest.mark.parametrize(
    "url",
    [
        f"https://{HOST}/SimpleNotificationService-abc.pem?",
        f"https://{HOST}/SimpleNotificationService-abc.pem?x=.pem",
        f"https://{HOST}/?x=SimpleNotificationService-abc.pem",
        f"https://{HOST}/SimpleNotificationService-abc.pem#.pem",
        f"https://{HOST}/SimpleNotificationService-abc.txt",
        f"https://{HOST}/SimpleNotificationService-abc.pem/",
        f"https://{HOST}/../evil/SimpleNotificationService-abc.pem",
        f"https://{HOST}/SimpleNotificationService-abc%2epem",
        f"https://{HOST}",
    ],
)
def test_a_signing_certificate_url_that_is_not_a_pem_file_on_the_host_is_rejected(url: str) -> None:
    rejected(notification(cert_url=url), "SigningCertURL")


def test_a_certificate_host_in_another_region_than_the_topic_is_rejected() -> None:
    rejected(
        notification(cert_url="https://sns.eu-west-1.amazonaws.com/SimpleNotificationService-abc.pem"), "SigningCertURL"
    )


def test_a_region_argument_that_differs_from_the_topic_region_is_rejected() -> None:
    rejected(notification(), "region eu-west-1", region="eu-west-1")
    assert verify(notification(), region="us-east-1").type == "Notification"


# --- the topic and the signed fields ----------------------------------------------------------


def test_a_message_from_an_unexpected_topic_is_rejected_even_when_genuinely_signed() -> None:
    other_topic = "arn:aws:sns:us-east-1:999999999999:someone-elses-topic"

    rejected(signed(notification_fields(topic_arn=other_topic)), "TopicArn")


def test_a_message_altered_by_one_byte_is_rejected() -> None:
    message = notification()
    message["Message"] = message["Message"].replace('"alice"', '"alicf"')

    rejected(message, "Signature does not match")


def test_an_altered_subject_is_rejected() -> None:
    message = notification(subject="image.completed")
    message["Subject"] = "image.failed"

    rejected(message, "Signature does not match")


def test_a_subject_added_after_signing_is_rejected() -> None:
    rejected({**notification(), "Subject": "image.completed"}, "Signature does not match")


def test_a_subject_removed_after_signing_is_rejected() -> None:
    message = notification(subject="image.completed")
    del message["Subject"]

    rejected(message, "Signature does not match")


def test_a_subject_smuggled_into_the_message_id_is_rejected() -> None:
    # The same canonical string, split differently: it would still match the signature.
    message = notification(subject="image.completed")
    del message["Subject"]
    message["MessageId"] += "\nSubject\nimage.completed"

    rejected(message, "MessageId contains a control character")


def test_a_null_subject_counts_as_absent() -> None:
    assert verify({**notification(), "Subject": None}).subject is None


@pytest.mark.parametrize(
    "field",
    ["Type", "MessageId", "TopicArn", "Message", "Timestamp", "SignatureVersion", "Signature", "SigningCertURL"],
)
def test_a_notification_missing_a_field_is_rejected(field: str) -> None:
    message = notification()
    del message[field]

    rejected(message, f"{field} is missing")


@pytest.mark.parametrize("field", ["SubscribeURL", "Token"])
def test_a_confirmation_missing_a_field_is_rejected(field: str) -> None:
    message = signed(confirmation_fields())
    del message[field]

    rejected(message, f"{field} is missing")


@pytest.mark.parametrize("value", [1, ["x"], {"x": 1}, True])
def test_a_field_that_is_not_a_string_is_rejected(value: object) -> None:
    rejected({**notification(), "Message": value}, "Message is not a string")


@pytest.mark.parametrize("message", [[], "Notification", None, 1])
def test_a_body_that_is_not_a_json_object_is_rejected(message: Any) -> None:
    rejected(message, "not a JSON object")


@pytest.mark.parametrize("message_type", ["notification", "Notification ", "SubscriptionConfirmationX", ""])
def test_an_unknown_type_is_rejected(message_type: str) -> None:
    rejected({**notification(), "Type": message_type}, "Type")


# --- signature version and signature ----------------------------------------------------------


@pytest.mark.parametrize("version", ["3", "0", "", "1 ", "SHA256", 1, 2])
def test_an_unknown_signature_version_is_rejected(version: object) -> None:
    rejected({**notification(), "SignatureVersion": version}, "SignatureVersion")


@pytest.mark.parametrize(("signed_as", "claimed"), [("1", "2"), ("2", "1")])
def test_a_signature_of_one_version_claiming_the_other_is_rejected(signed_as: str, claimed: str) -> None:
    message = notification(version=signed_as)
    message["SignatureVersion"] = claimed

    rejected(message, "Signature does not match")


def test_a_signature_by_another_key_than_the_certificates_is_rejected() -> None:
    rejected(notification(key=attacker_key()), "Signature does not match")


@pytest.mark.parametrize("signature", ["not base64!", "QUJD=====", "é", ""])
def test_a_signature_that_is_not_base64_or_is_empty_is_rejected(signature: str) -> None:
    rejected({**notification(), "Signature": signature}, "Signature")


# --- the certificate --------------------------------------------------------------------------


def test_an_expired_certificate_is_rejected() -> None:
    expired = certificate_pem(valid_from=NOW - timedelta(days=400), valid_until=NOW - timedelta(seconds=1))

    rejected(notification(), "expired", fetch=serve(expired))


def test_a_certificate_not_yet_valid_is_rejected() -> None:
    future = certificate_pem(valid_from=NOW + timedelta(minutes=5))

    rejected(notification(), "not yet valid", fetch=serve(future))


@pytest.mark.parametrize("body", [b"", b"hello", b"-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n"])
def test_a_certificate_that_is_not_an_x509_pem_is_rejected(body: bytes) -> None:
    rejected(notification(), "X.509", fetch=serve(body))


def test_a_certificate_without_an_rsa_key_is_rejected() -> None:
    ec_certificate = certificate_pem(ec.generate_private_key(ec.SECP256R1()))

    rejected(notification(), "RSA key", fetch=serve(ec_certificate))


def test_a_certificate_fetch_failure_is_a_verification_error() -> None:
    def unreachable(url: str) -> bytes:
        raise requests.ConnectionError(url)

    rejected(notification(), "could not fetch", fetch=unreachable)


# --- freshness --------------------------------------------------------------------------------


def test_a_stale_timestamp_is_rejected() -> None:
    rejected(signed(notification_fields(age=timedelta(hours=1, seconds=1))), "older than")


def test_the_maximum_age_is_configurable_and_none_disables_it() -> None:
    week_old = signed(notification_fields(age=timedelta(days=7)))

    assert verify(week_old, max_age=None).type == "Notification"
    assert verify(week_old, max_age=timedelta(days=8)).type == "Notification"
    rejected(week_old, "older than", max_age=timedelta(days=6))


@pytest.mark.parametrize(
    "timestamp", ["2026-11-22T09:59:00", "2026-11-22 09:59:00Z", "2026-13-22T09:59:00Z", "yesterday"]
)
def test_a_malformed_timestamp_is_rejected(timestamp: str) -> None:
    rejected(signed({**notification_fields(), "Timestamp": timestamp}), "Timestamp")


# --- subscription and unsubscribe confirmations -----------------------------------------------


def test_a_subscription_confirmation_verifies_and_confirm_subscription_gets_the_subscribe_url_once() -> None:
    calls: list[str] = []
    verified = verify(signed(confirmation_fields(), version="2"))

    confirm_subscription(verified, get=calls.append)

    assert verified.type == "SubscriptionConfirmation"
    assert verified.token == "2336412f37fb687f5d51e6e241d164b0533302ec696efc8f113cd2252ce8a925"
    assert calls == [SUBSCRIBE_URL]


def test_an_unsubscribe_confirmation_verifies() -> None:
    assert verify(signed(confirmation_fields("UnsubscribeConfirmation"))).type == "UnsubscribeConfirmation"


@pytest.mark.parametrize(
    "subscribe_url",
    [
        "https://evil.com/?Action=ConfirmSubscription",
        "https://sns.us-east-1.amazonaws.com.evil.com/?Action=ConfirmSubscription",
        "https://sns.eu-west-1.amazonaws.com/?Action=ConfirmSubscription",
        "http://sns.us-east-1.amazonaws.com/?Action=ConfirmSubscription",
        "https://sns.us-east-1.amazonaws.com@evil.com/?Action=ConfirmSubscription",
        "https://sns.us-east-1.amazonaws.com:8443/?Action=ConfirmSubscription",
    ],
)
def test_a_confirmation_whose_subscribe_url_points_elsewhere_is_rejected(subscribe_url: str) -> None:
    rejected(signed(confirmation_fields(subscribe_url=subscribe_url)), "SubscribeURL")


def test_confirm_subscription_refuses_other_messages_and_foreign_urls_without_a_request() -> None:
    calls: list[str] = []
    by_hand = VerifiedMessage(
        type="SubscriptionConfirmation",
        message_id="m",
        topic_arn=TOPIC_ARN,
        subject=None,
        message="",
        timestamp=NOW,
        subscribe_url="https://evil.com/?Action=ConfirmSubscription",
    )

    with pytest.raises(SnsVerificationError, match="not a SubscriptionConfirmation"):
        confirm_subscription(verify(notification()), get=calls.append)
    with pytest.raises(SnsVerificationError, match="SubscribeURL"):
        confirm_subscription(by_hand, get=calls.append)
    assert calls == []


# --- the default certificate fetcher ----------------------------------------------------------


class FakeTransport(requests.adapters.BaseAdapter):
    """Answers every request with one status and body, recording the URLs asked for."""

    def __init__(self, status: int, body: bytes) -> None:
        super().__init__()
        self.status = status
        self.body = body
        self.urls: list[str | None] = []

    def send(
        self,
        request: requests.PreparedRequest,
        stream: bool = False,
        timeout: float | tuple[float, float] | tuple[float, None] | None = None,
        verify: bool | str = True,
        cert: bytes | str | tuple[bytes | str, bytes | str] | None = None,
        proxies: Mapping[str, str] | None = None,
    ) -> requests.Response:
        self.urls.append(request.url)
        response = requests.Response()
        response.status_code = self.status
        response.raw = HTTPResponse(body=io.BytesIO(self.body), status=self.status, preload_content=False)
        response.request = request
        return response

    def close(self) -> None:
        pass


def fetcher_over(transport: FakeTransport, **options: Any) -> CertificateFetcher:
    session = requests.Session()
    session.mount("https://", transport)
    return CertificateFetcher(session=session, **options)


def test_the_certificate_fetcher_caches_by_url() -> None:
    transport = FakeTransport(200, sns_certificate())
    fetch = fetcher_over(transport)

    assert verify(notification(), fetch=fetch).type == "Notification"
    assert verify(notification(version="2"), fetch=fetch).type == "Notification"
    assert transport.urls == [CERT_URL]


def test_the_certificate_fetcher_refuses_a_body_over_its_size_cap() -> None:
    fetch = fetcher_over(FakeTransport(200, b"x" * 5000), max_bytes=4096)

    rejected(notification(), "larger than 4096 bytes", fetch=fetch)


@pytest.mark.parametrize("status", [301, 302, 404, 500])
def test_the_certificate_fetcher_refuses_redirects_and_errors(status: int) -> None:
    transport = FakeTransport(status, sns_certificate())

    rejected(notification(), f"HTTP {status}", fetch=fetcher_over(transport))
    rejected(notification(), f"HTTP {status}", fetch=fetcher_over(transport))
    assert len(transport.urls) == 2  # failures are not cached


# --- property ---------------------------------------------------------------------------------

SIGNED_SAMPLES = [
    (notification(subject="image.completed", version="1"), NOTIFICATION_FIELDS),
    (notification(version="2"), tuple(name for name in NOTIFICATION_FIELDS if name != "Subject")),
    (signed(confirmation_fields()), CONFIRMATION_FIELDS),
]
ANY_CHARACTER = st.one_of(st.characters(), st.sampled_from(["\n", "\ud800", "\x00", " "]))


@settings(max_examples=300, deadline=None)
@given(data=st.data())
def test_flipping_any_single_character_of_any_signed_field_makes_verification_fail(data: st.DataObject) -> None:
    original, fields = data.draw(st.sampled_from(SIGNED_SAMPLES))
    name = data.draw(st.sampled_from(fields))
    value: str = original[name]
    index = data.draw(st.integers(min_value=0, max_value=len(value) - 1))
    replacement = data.draw(ANY_CHARACTER.filter(lambda character: character != value[index]))
    tampered = {**original, name: value[:index] + replacement + value[index + 1 :]}

    assert verify(original).message_id == original["MessageId"]
    with pytest.raises(SnsVerificationError):
        verify(tampered)
