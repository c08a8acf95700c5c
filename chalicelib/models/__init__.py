"""Request, response and domain models (pydantic).

These modules do without ``from __future__ import annotations``: with it, pydantic would
evaluate every annotation string when each class is created, about 3 ms of every cold
start (docs/benchmarks.md, Cold start).
"""
