"""The per-image time budget fits the processor Lambda: the first record of a batch always starts."""

from __future__ import annotations

import json

from chalicelib.events.uploads import FINISH_MARGIN_SECONDS
from chalicelib.settings import Settings
from tests.conftest import PROJECT_ROOT


def test_the_first_record_of_every_batch_has_time_for_its_image_and_its_writes() -> None:
    config = json.loads((PROJECT_ROOT / ".chalice" / "config.json").read_text())
    lambda_timeout = config["lambda_functions"]["handle_upload_events"]["lambda_timeout"]
    image_timeout = Settings.model_fields["image_timeout_seconds"].default
    assert image_timeout + FINISH_MARGIN_SECONDS <= lambda_timeout - 10  # and init, the S3 read, a cold start
