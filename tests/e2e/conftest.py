"""End-to-end tests: the local stack in a child process, driven over HTTP as a client would."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import boto3
import pytest

from image_client.client import ImageServiceClient
from local_stack.process import RunningStack, local_stack
from tests.conftest import local_token


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        if "tests/e2e/" in str(item.fspath):
            item.add_marker(pytest.mark.e2e)


@pytest.fixture(scope="session")
def stack() -> Iterator[RunningStack]:
    with local_stack(workers=2) as running:
        yield running


@pytest.fixture(scope="session")
def aws(stack: RunningStack) -> Callable[[str], Any]:
    """boto3 clients of the stack's moto server (to look behind the API, as an operator could)."""

    def client(service: str) -> Any:
        return boto3.client(  # type: ignore[call-overload]
            service,
            endpoint_url=stack.aws_url,
            region_name="us-east-1",
            aws_access_key_id="testing",
            aws_secret_access_key="testing",
        )

    return client


@pytest.fixture
def client_for(stack: RunningStack) -> Callable[[str], ImageServiceClient]:
    def make(user_id: str) -> ImageServiceClient:
        return ImageServiceClient(stack.api_url, local_token(user_id))

    return make
