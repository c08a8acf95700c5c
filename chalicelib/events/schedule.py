"""Scheduled work: the sweep that expires abandoned uploads and relays unpublished events."""

from __future__ import annotations

from chalice.app import Blueprint, CloudWatchEvent, Rate

from chalicelib import dependencies

scheduled_events = Blueprint(__name__)


@scheduled_events.schedule(Rate(5, unit=Rate.MINUTES), description="Expire abandoned uploads; relay unsent events")
def sweep_uploads(event: CloudWatchEvent) -> None:
    dependencies.sweeper().run()  # logs what it did, when it did anything
