"""What a Lambda cold start does before its first event.

Every function of the app (the API, the upload processor, the scheduled sweep) imports the
whole of ``app.py``, but each needs only part of it. An on-demand init is on the first
event's critical path, so the import loads what every function needs and leaves the rest
to first use: each pydantic model builds its validator when first used (``defer_build``)
and PyJWT, with cryptography, loads with the first token (see ``chalicelib.auth``).

When init runs ahead of traffic (provisioned concurrency, SnapStart), nothing is gained by
waiting, so ``prewarm`` does all of it then.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping

from pydantic import BaseModel

import chalicelib.models

# The values of AWS_LAMBDA_INITIALIZATION_TYPE for an init that no request waits on.
AHEAD_OF_TRAFFIC = frozenset({"provisioned-concurrency", "snap-start"})


def init_ahead_of_traffic(environ: Mapping[str, str]) -> bool:
    return environ.get("AWS_LAMBDA_INITIALIZATION_TYPE", "on-demand") in AHEAD_OF_TRAFFIC


def wire_and_domain_models() -> Iterator[type[BaseModel]]:
    """Every model class defined in ``chalicelib.models``."""
    import importlib
    import pkgutil  # only prewarm and the tests walk the package: not worth its import at init

    for module_info in pkgutil.iter_modules(chalicelib.models.__path__, "chalicelib.models."):
        module = importlib.import_module(module_info.name)
        for value in vars(module).values():
            if isinstance(value, type) and issubclass(value, BaseModel) and value.__module__ == module.__name__:
                yield value


def prewarm() -> None:
    """Load now what first use would: PyJWT with cryptography, and every model's validator."""
    import jwt.algorithms

    if not jwt.algorithms.has_crypto:  # RS256 needs it; fail the init, not the first request
        raise RuntimeError("PyJWT cannot import cryptography")
    for model in wire_and_domain_models():
        model.model_rebuild()
