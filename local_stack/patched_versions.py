"""The library versions the local stack's patches of library internals were written for.

The local stack patches moto (DynamoDB, SNS, its SNS signing keys) and Chalice's local
server. Each patch reaches into private code, so each checks, before it patches, that the
installed version is the one it was read against, and stops with a message that says what
to re-check otherwise: a silent patch of a changed internal would make the local stack
differ from AWS in ways no test names. Pinned versions are in requirements-dev.txt.
"""

from __future__ import annotations

from importlib import metadata
from typing import Final

#: distribution name -> the version every patch of it was written against
WRITTEN_FOR: Final[dict[str, str]] = {"moto": "5.2.5", "chalice": "1.34.0"}


class UnexpectedLibraryVersion(RuntimeError):
    """A patch met a version of its library it was not written for."""


def installed_version(distribution: str) -> str:
    return metadata.version(distribution)


def require(distribution: str, patch: str, recheck: str) -> None:
    """Refuse to apply ``patch`` (where it lives) unless ``distribution`` is the version it
    was written for; ``recheck`` says what a maintainer must verify before raising the pin."""
    expected = WRITTEN_FOR[distribution]
    found = installed_version(distribution)
    if found != expected:
        raise UnexpectedLibraryVersion(
            f"{patch} patches {distribution} {expected}'s internals, but {distribution} {found} is installed: "
            f"{recheck}, then update the patch and WRITTEN_FOR in local_stack/patched_versions.py."
        )
