"""The contract suite: every case runs on the in-memory fakes and on the real adapters
over moto (``backends.py``), so the fakes the unit tests use cannot drift from AWS.

One moto stage per module (provisioning takes most of a second), emptied before each
case; the fakes are new for each case.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.contract.backends import BACKENDS, Backend, FakeBackend, MotoBackend, moto_stage


@pytest.fixture(scope="module")
def _moto_backend() -> Iterator[MotoBackend]:
    with moto_stage() as stage:
        yield MotoBackend(stage)


@pytest.fixture(params=BACKENDS)
def backend(request: pytest.FixtureRequest) -> Backend:
    if request.param == "fake":
        return FakeBackend()
    moto: MotoBackend = request.getfixturevalue("_moto_backend")
    moto.reset()
    return moto
