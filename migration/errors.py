"""The one error type operator commands turn into a one-line message and exit status 2."""

from __future__ import annotations


class MigrationError(Exception):
    """Something the operator can fix: a bad DSN, an unknown stage, a missing table."""
