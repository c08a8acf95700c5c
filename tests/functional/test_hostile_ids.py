"""Ids a careless or hostile client sends: 404 answers do not echo them at length."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest

from tests.functional.support import error_of

AuthFor = Callable[[str], dict[str, str]]
LONG_ID = "A" * 5000


@pytest.mark.parametrize(
    ("method", "path"),
    [
        ("get", "/images/{id}"),
        ("get", "/images/{id}/status"),
        ("patch", "/images/{id}"),
        ("delete", "/images/{id}"),
        ("delete", "/webhooks/{id}"),
    ],
)
def test_a_404_for_a_very_long_id_quotes_only_a_short_prefix(
    api: Any, auth_for: AuthFor, method: str, path: str
) -> None:
    response = getattr(api.http, method)(path.format(id=LONG_ID), headers=auth_for("alice"), body='{"version": 1}')

    error = error_of(response, 404, "not_found")
    assert LONG_ID[:100] not in error["message"] and len(error["message"]) < 100, error
    assert len(response.body) < 300
