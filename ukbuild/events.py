"""The build's event stream: what ``--json`` writes, one JSON object per line.

Other tools build on this, so it is versioned: ``EVENTS_VERSION`` is in every
event, fields are only ever added within a version, and the JSON Schema in
``ukbuild/schemas/events-v1.schema.json`` (documented in ``docs/events.md``)
is what the tests validate against.
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Callable
from typing import Any

EVENTS_VERSION = 1

#: Every event kind and the fields it always carries (besides version, event, time).
EVENT_FIELDS: dict[str, tuple[str, ...]] = {
    "build-started": ("project", "targets", "jobs", "out_dir", "cache_dir"),
    "action-started": ("action", "key"),
    "action-cached": ("action", "key", "via"),
    "action-finished": ("action", "key", "seconds", "outputs"),
    "action-failed": ("action", "key", "message", "reason", "log", "detail"),
    "action-skipped": ("action", "because"),
    "warning": ("message",),
    "build-finished": ("ok", "executed", "cached", "failed", "skipped", "seconds", "outputs", "overrides"),
}

Event = dict[str, Any]
Subscriber = Callable[[Event], None]


class EventBus:
    """Delivers events to subscribers, one at a time (workers emit from their threads)."""

    def __init__(self) -> None:
        self._subscribers: list[Subscriber] = []
        self._lock = threading.Lock()

    def subscribe(self, subscriber: Subscriber) -> None:
        self._subscribers.append(subscriber)

    def emit(self, kind: str, **fields: Any) -> None:
        if kind not in EVENT_FIELDS:
            raise ValueError(f"unknown event kind {kind!r}")
        event: Event = {"version": EVENTS_VERSION, "event": kind, "time": round(time.time(), 6), **fields}
        with self._lock:
            for subscriber in self._subscribers:
                subscriber(event)


def to_json_line(event: Event) -> str:
    return json.dumps(event, sort_keys=True, separators=(",", ":")) + "\n"
