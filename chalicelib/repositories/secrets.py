"""Reads a SecureString parameter from SSM (the cursor-signing secret of AWS stages)."""

from __future__ import annotations

from typing import TYPE_CHECKING

from chalicelib.repositories.dynamo import translated_errors

if TYPE_CHECKING:
    from mypy_boto3_ssm import SSMClient


def read_secret(client: SSMClient, name: str) -> str:
    with translated_errors():
        response = client.get_parameter(Name=name, WithDecryption=True)
    return str(response["Parameter"]["Value"])
