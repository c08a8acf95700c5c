"""The issue's scan bomb uploaded through the local stack ends failed within seconds."""

from __future__ import annotations

import time
import uuid

from tests.processors import hostile


def test_the_scan_bomb_from_the_issue_ends_failed_within_seconds_with_a_clear_code(client_for):
    # 342 KB: 7000x7000 grey, progressive, its last scan repeated 2,000 times (99 s of decoding).
    client = client_for(f"bomb-{uuid.uuid4().hex[:8]}")
    data = hostile.scan_bomb(2000)
    created = client.create_upload("bomb.jpg", "image/jpeg", len(data))
    client.upload(created, data, "bomb.jpg")
    uploaded = time.monotonic()

    final = client.wait_until_done(created["id"], timeout=60)

    assert time.monotonic() - uploaded < 10
    assert final["status"] == "failed"
    assert final["error"]["code"] == "image_too_complex"
    assert "save or export it again" in final["error"]["message"]
