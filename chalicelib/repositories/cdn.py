"""CloudFront adapter: invalidates rendition paths after a delete."""

from __future__ import annotations

from typing import TYPE_CHECKING

from chalicelib.repositories.dynamo import translated_errors

if TYPE_CHECKING:
    from mypy_boto3_cloudfront import CloudFrontClient


class CdnInvalidator:
    def __init__(self, client: CloudFrontClient, distribution_id: str) -> None:
        self._client = client
        self._distribution_id = distribution_id

    def invalidate(self, paths: list[str], reference: str) -> None:
        """``reference`` is deterministic, so a retried delete does not create a second invalidation."""
        with translated_errors():
            self._client.create_invalidation(
                DistributionId=self._distribution_id,
                InvalidationBatch={
                    "Paths": {"Quantity": len(paths), "Items": paths},
                    "CallerReference": reference,
                },
            )
