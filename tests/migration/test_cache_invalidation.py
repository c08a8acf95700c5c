"""Legacy cache invalidation against a real Redis: SCAN with MATCH/COUNT, never KEYS."""

from __future__ import annotations

from typing import Any

from migration.cache_invalidation import escape_glob, invalidate, invalidate_image, invalidate_user


def fill(redis: Any, users: int, keys_per_user: int) -> None:
    with redis.pipeline(transaction=False) as pipe:
        for user in range(users):
            for n in range(keys_per_user):
                pipe.set(f"gallery:user:user-{user}:page:{n}", "cached")
        pipe.execute()


def command_calls(redis: Any, command: str) -> int:
    stats = redis.info("commandstats")
    return int(stats.get(f"cmdstat_{command}", {}).get("calls", 0))


def test_invalidating_a_user_removes_exactly_that_users_keys(redis_server: Any) -> None:
    fill(redis_server, users=80, keys_per_user=40)
    redis_server.set("gallery:image:abc", "cached")

    removed = invalidate_user(redis_server, "user-7")

    assert removed == 40
    assert redis_server.dbsize() == 80 * 40 - 40 + 1
    assert redis_server.exists("gallery:user:user-7:page:0") == 0
    assert redis_server.exists("gallery:user:user-70:page:0") == 1  # a prefix of another user is not matched


def test_the_keyspace_is_walked_with_scan_in_many_steps_and_never_with_keys(redis_server: Any) -> None:
    fill(redis_server, users=20, keys_per_user=500)

    removed = invalidate(redis_server, "gallery:user:*", count=100)

    assert removed == 10_000
    assert redis_server.dbsize() == 0
    assert command_calls(redis_server, "scan") > 10  # cursor iteration, COUNT 100 per step
    assert command_calls(redis_server, "keys") == 0


def test_glob_characters_in_a_user_id_match_only_that_user(redis_server: Any) -> None:
    redis_server.set("gallery:user:a*:page:1", "cached")
    redis_server.set("gallery:user:abc:page:1", "cached")
    redis_server.set("gallery:user:a[b]:page:1", "cached")

    assert invalidate_user(redis_server, "a*") == 1
    assert invalidate_user(redis_server, "a[b]") == 1
    assert redis_server.exists("gallery:user:abc:page:1") == 1
    assert escape_glob("a*b?[c]\\") == "a\\*b\\?\\[c\\]\\\\"


def test_invalidating_an_image_removes_its_key_and_its_variants(redis_server: Any) -> None:
    for key in ("gallery:image:img-1", "gallery:image:img-1:thumb", "gallery:image:img-10"):
        redis_server.set(key, "cached")

    assert invalidate_image(redis_server, "img-1") == 2
    assert redis_server.exists("gallery:image:img-10") == 1


def test_nothing_to_invalidate_removes_nothing(redis_server: Any) -> None:
    assert invalidate_user(redis_server, "nobody") == 0
