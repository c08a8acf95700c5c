"""Registers the ``package`` marker (the suite runs with ``--strict-markers``)."""

from __future__ import annotations

import pytest


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line(
        "markers",
        "package: builds the Lambda deployment package and imports it in a clean interpreter (slow; needs a C "
        "toolchain and PyPI)",
    )
