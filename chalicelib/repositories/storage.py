"""S3 adapter: presigned uploads, reading uploads, writing renditions."""

from __future__ import annotations

from typing import TYPE_CHECKING, NamedTuple

from botocore.exceptions import ClientError

from chalicelib.errors import TransientFailure
from chalicelib.repositories.dynamo import error_code, translated_errors

if TYPE_CHECKING:
    from mypy_boto3_s3 import S3Client

_MISSING = frozenset({"NoSuchKey", "404", "NotFound"})

# Every upload arrives tagged unprocessed (the POST policy pins the tag); the processor
# re-tags it once the image completed. The upload bucket's lifecycle rule removes objects
# still tagged unprocessed after a few days: abandoned, rejected or never-processed files.
STATE_TAG = "state"
UNPROCESSED = "unprocessed"
PROCESSED = "processed"
UNPROCESSED_TAGGING = (
    f"<Tagging><TagSet><Tag><Key>{STATE_TAG}</Key><Value>{UNPROCESSED}</Value></Tag></TagSet></Tagging>"
)


class UploadForm(NamedTuple):
    url: str
    fields: dict[str, str]


class ObjectStore:
    """The stage's two buckets: private uploads in, public-by-CDN renditions out."""

    def __init__(self, client: S3Client, presigner: S3Client, upload_bucket: str, image_bucket: str) -> None:
        self._client = client
        self._presigner = presigner
        self._uploads = upload_bucket
        self._images = image_bucket

    @property
    def upload_bucket(self) -> str:
        return self._uploads

    def presign_upload(self, key: str, content_type: str, size: int, expires_in: int) -> UploadForm:
        """A POST policy that pins the key, the Content-Type and 1..size bytes."""
        # generate_presigned_post signs locally; no request is made.
        post = self._presigner.generate_presigned_post(
            Bucket=self._uploads,
            Key=key,
            Fields={"Content-Type": content_type, "tagging": UNPROCESSED_TAGGING},
            Conditions=[
                {"Content-Type": content_type},
                {"tagging": UNPROCESSED_TAGGING},
                ["content-length-range", 1, size],
            ],
            ExpiresIn=expires_in,
        )
        return UploadForm(url=post["url"], fields={k: str(v) for k, v in post["fields"].items()})

    def upload_size(self, key: str) -> int | None:
        """The stored upload's size, or None when there is no such object."""
        try:
            with translated_errors():
                head = self._client.head_object(Bucket=self._uploads, Key=key)
        except ClientError as exc:
            if error_code(exc) in _MISSING:
                return None
            raise
        return int(head["ContentLength"])

    def read_upload(self, key: str) -> bytes | None:
        try:
            with translated_errors():
                response = self._client.get_object(Bucket=self._uploads, Key=key)
                return response["Body"].read()
        except ClientError as exc:
            if error_code(exc) in _MISSING:
                return None
            raise

    def mark_processed(self, key: str) -> bool:
        """Keep the original of a completed image out of the lifecycle rule's reach.

        False when there is no such object any more (the image was deleted meanwhile).
        """
        try:
            with translated_errors():
                self._client.put_object_tagging(
                    Bucket=self._uploads,
                    Key=key,
                    Tagging={"TagSet": [{"Key": STATE_TAG, "Value": PROCESSED}]},
                )
        except ClientError as exc:
            if error_code(exc) in _MISSING:
                return False
            raise
        return True

    def read_image(self, key: str) -> bytes | None:
        """An object of the image bucket (a legacy original, for a re-render), or None when gone."""
        try:
            with translated_errors():
                response = self._client.get_object(Bucket=self._images, Key=key)
                return response["Body"].read()
        except ClientError as exc:
            if error_code(exc) in _MISSING:
                return None
            raise

    def write_image(self, key: str, data: bytes, content_type: str = "image/webp") -> None:
        with translated_errors():
            self._client.put_object(
                Bucket=self._images,
                Key=key,
                Body=data,
                ContentType=content_type,
                # Keys are per image, rendition spec, box and format, and rewritten only
                # with identical bytes (a retried delivery): a URL's bytes never change.
                CacheControl="public, max-age=31536000, immutable",
            )

    def delete_image_objects(self, original_key: str, derived_keys: list[str]) -> None:
        """Remove an image's original and renditions: one DeleteObjects per bucket.

        Deleting a missing key succeeds in S3, so a retried delete finishes cleanly.
        """
        self._delete(self._uploads, [original_key])
        self.delete_renditions(derived_keys)

    def delete_renditions(self, keys: list[str]) -> None:
        """Remove renditions that no record refers to (safe to repeat)."""
        self._delete(self._images, keys)

    def _delete(self, bucket: str, keys: list[str]) -> None:
        with translated_errors():
            response = self._client.delete_objects(
                Bucket=bucket,
                Delete={"Objects": [{"Key": key} for key in keys], "Quiet": True},
            )
        if response.get("Errors"):
            raise TransientFailure("some objects could not be deleted; retry the delete")

    def delete_upload(self, key: str) -> None:
        with translated_errors():
            self._client.delete_object(Bucket=self._uploads, Key=key)
