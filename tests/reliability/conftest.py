"""Reliability tests: faults, duplicates, load invariants and security, on the functional
(moto) fixtures or the unit fakes. Every fixture is per test, so ``-n 2`` works."""

from __future__ import annotations

from tests.functional.conftest import api, aws_stack, sns_events, uploader  # noqa: F401
