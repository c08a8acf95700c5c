"""The one rule for a user id, wherever one enters: a token's ``sub``, an import body's
``userId``, a legacy row the backfill reads, ``scripts/mint_token.py``.

A user id becomes a path segment of object keys (``uploads/{userId}/{imageId}``,
``images/{userId}/{imageId}.webp``), of the ``imageUrl`` built from them (percent-encoded
by the presenter), part of DynamoDB index keys (``USER#<userId>``, ``WEBHOOKS#<userId>``),
an SNS message attribute and filter policy value, and a log field. Cognito subs are UUIDs,
but service tokens and legacy gallery ids (``gallery_images.user_id`` is free ``text``) are
not, so the rule refuses only what breaks one of those uses and keeps every other id
(``%``, ``#``, ``?``, ``+``, spaces, any printable Unicode) working as it is:

- empty, or longer than 128 characters (the object keys stay far below S3's 1,024 bytes);
- ``/``: it would split the key into other segments (the processor parses the key back);
- exactly ``.`` or ``..``: URL clients normalise such a segment away (``/images/../x``
  becomes ``/x``), so ``imageUrl`` could not be fetched;
- control characters (C0, DEL, C1) and the line separators U+2028/U+2029: S3 and SNS
  refuse or mangle them (XML 1.0, SNS's allowed characters), and they split log lines;
- lone surrogates (no UTF-8 form: no key, no URL) and the non-characters U+FFFE/U+FFFF
  (outside what SNS message attributes accept).

Refusing beats encoding: an encoding would move every existing key whose id it changes,
and the ids that need it do not occur among Cognito subs. No pydantic here, so the token
check costs no import.
"""

from __future__ import annotations

import re

MAX_USER_ID_LENGTH = 128

_UNSAFE_CHARACTER = re.compile("[/\x00-\x1f\x7f-\x9f\u2028\u2029\ud800-\udfff\ufffe\uffff]")

# The rule in words, as clients and operators read it.
USER_ID_RULE = f"1-{MAX_USER_ID_LENGTH} characters, not '.' or '..', without '/', control characters or line separators"


def user_id_problem(value: str) -> str | None:
    """What makes ``value`` unusable as a user id (a phrase such as "must not be '.' or
    '..'"), or None when it is usable."""
    if not value:
        return "must not be empty"
    if len(value) > MAX_USER_ID_LENGTH:
        return f"must be at most {MAX_USER_ID_LENGTH} characters"
    if value in (".", ".."):
        return "must not be '.' or '..'"
    unsafe = _UNSAFE_CHARACTER.search(value)
    if unsafe is not None:
        return "must not contain '/'" if unsafe.group() == "/" else "must not contain control or non-text characters"
    return None


def is_user_id(value: object) -> bool:
    return isinstance(value, str) and user_id_problem(value) is None
