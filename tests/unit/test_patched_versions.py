"""Every patch of library internals in the local stack refuses a version it was not written for."""

from __future__ import annotations

from collections.abc import Callable

import pytest

from local_stack import moto_dynamodb, moto_sns, patched_versions
from local_stack.patched_versions import WRITTEN_FOR, UnexpectedLibraryVersion


def test_the_pins_are_the_installed_versions() -> None:
    for distribution, version in WRITTEN_FOR.items():
        assert patched_versions.installed_version(distribution) == version, distribution


@pytest.mark.parametrize(
    ("patch", "distribution"),
    [
        (moto_sns.match_sns_subscribe, "moto"),
        (moto_dynamodb.serialise_moto_dynamodb, "moto"),
        (moto_dynamodb.speed_up_moto_dynamodb, "moto"),
    ],
)
def test_a_patch_stops_with_what_to_recheck_on_another_version(
    monkeypatch: pytest.MonkeyPatch, patch: Callable[[], None], distribution: str
) -> None:
    monkeypatch.setattr(patched_versions, "installed_version", lambda name: "99.0.0")
    with pytest.raises(UnexpectedLibraryVersion, match=rf"{distribution} 99\.0\.0 is installed: .*WRITTEN_FOR"):
        patch()


def test_the_local_api_and_cdn_check_their_versions_before_patching() -> None:
    # serve_api patches Chalice's request handler and LocalCdn reads moto's SNS keys: both
    # run in child processes, so check the guard is in their code rather than start them.
    import inspect

    from local_stack import supervisor

    assert 'require(\n        "chalice"' in inspect.getsource(supervisor.serve_api)
    assert 'require("moto"' in inspect.getsource(supervisor.LocalCdn.__init__)
