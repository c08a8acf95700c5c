"""Scheduled work: the sweep that expires abandoned uploads and relays unpublished events.

``app.sweep_uploads`` is the Lambda handler, on this schedule.
"""

from __future__ import annotations

from chalice.app import CloudWatchEvent, Rate

from chalicelib import dependencies

SWEEP_RATE = Rate(5, unit=Rate.MINUTES)
SWEEP_DESCRIPTION = "Expire abandoned uploads; relay unsent events"


def sweep(event: CloudWatchEvent) -> None:
    dependencies.sweeper().run()  # logs what it did, when it did anything
