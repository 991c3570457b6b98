"""Incidents: repeated failures of one cause are one incident, announced once when it opens and
once when it clears, with how many failures and which days it covered.

Kept as plain JSON (a sensor's cursor), so a daemon restart neither repeats nor forgets an alert.
Used by the decay sensor (a cause is a kind of check) and by the run-failure alert (a cause is
where a run failed, the error's class and the deterministic part of its message: `failure_cause`).
"""

from __future__ import annotations

import json
import re
from dataclasses import asdict, dataclass, field

# What differs between failures of one cause: run ids and other long hex ids, days and times,
# numbers (rows, lines, pids, durations). Quoted names (a column, a check) are kept: they are the
# cause.
_VOLATILE = (
    (re.compile(r"\b[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}\b"), "<id>"),
    (re.compile(r"\b(?=[0-9a-f]*\d)[0-9a-f]{8,}\b"), "<id>"),
    (
        re.compile(
            r"\d{4}-\d{2}-\d{2}(?:[T ]\d{2}:\d{2}(?::\d{2}(?:\.\d+)?)?)?(?:Z|[+-]\d{2}:?\d{2})?"
        ),
        "<day>",
    ),
    (re.compile(r"(?<![\w.])\d+(?:\.\d+)?"), "<n>"),
    (re.compile(r"\s+"), " "),
)
CAUSE_MESSAGE_CHARS = 300


def deterministic_part(message: str) -> str:
    """`message` without what changes from one failure of the same cause to the next (ids, days,
    numbers), first `CAUSE_MESSAGE_CHARS` characters."""
    for pattern, placeholder in _VOLATILE:
        message = pattern.sub(placeholder, message)
    return message.strip()[:CAUSE_MESSAGE_CHARS]


def failure_cause(where: str, error_class: str | None, message: str) -> str:
    """The key of a failure's cause: where it failed (a step, or the run), the error's class and
    the deterministic part of its message. Ten days failing on one bad schema share it; another
    step, class or message does not."""
    return f"{where} | {error_class or '-'} | {deterministic_part(message)}"


@dataclass
class Incident:
    key: str
    cause: str
    opened_at: float
    last_seen: float
    failures: int = 1
    days: list[str] = field(default_factory=list)
    # What must pass again for the incident to clear, when its user says (`awaiting` of `failed`):
    # it clears once none is left.
    awaiting: list[str] = field(default_factory=list)

    def describe(self) -> str:
        days = ", ".join(self.days) if self.days else "no day"
        return f"{self.cause}: {self.failures} failure(s), days {days}"


@dataclass
class IncidentBook:
    """The open incidents by key (one cause), and the day each cause last cleared on: a failure
    of a day up to that one is history (a late re-evaluation of a day already past the incident),
    not a new incident."""

    open: dict[str, Incident] = field(default_factory=dict)
    cleared_on: dict[str, str] = field(default_factory=dict)

    @classmethod
    def parse(cls, text: str | None) -> IncidentBook:
        if not text:
            return cls()
        data = json.loads(text)
        return cls(
            {key: Incident(**value) for key, value in data.get("open", {}).items()},
            dict(data.get("cleared_on", {})),
        )

    def serialize(self) -> str:
        return json.dumps(
            {"open": {k: asdict(v) for k, v in self.open.items()}, "cleared_on": self.cleared_on},
            sort_keys=True,
        )

    def failed(
        self,
        key: str,
        cause: str,
        partition: str | None,
        at: float,
        *,
        awaiting: str | None = None,
        quiet_seconds: float | None = None,
    ) -> Incident | None:
        """Record a failure; the incident when this failure opens it (announce it), else None.
        `awaiting`: what must pass again for it to clear (see `passed`). With `quiet_seconds`, a
        failure of an open incident quiet that long announces it again (its counts go on): the
        same cause days later is news, not part of the burst already announced. `partition`: the
        failure's partition key, text as Dagster tags it and the sensor's cursor keeps it."""
        if partition is not None and partition <= self.cleared_on.get(key, ""):
            return None
        incident = self.open.get(key)
        if incident is None:
            incident = self.open[key] = Incident(key, cause, opened_at=at, last_seen=at)
            if partition:
                incident.days.append(partition)
            if awaiting:
                incident.awaiting.append(awaiting)
            return incident
        quiet = quiet_seconds is not None and at - incident.last_seen >= quiet_seconds
        incident.failures += 1
        incident.last_seen = max(incident.last_seen, at)
        if partition and partition not in incident.days:
            incident.days = sorted([*incident.days, partition])
        if awaiting and awaiting not in incident.awaiting:
            incident.awaiting.append(awaiting)
        return incident if quiet else None

    def passed(self, key: str, awaiting: str) -> Incident | None:
        """`awaiting` of incident `key` passed again: the incident when nothing else it awaits is
        left (it is closed: announce the all-clear), else None."""
        incident = self.open.get(key)
        if incident is None or awaiting not in incident.awaiting:
            return None
        incident.awaiting.remove(awaiting)
        return None if incident.awaiting else self.open.pop(key)

    def cleared(self, key: str, partition: str | None = None) -> Incident | None:
        """The cause passed again (on the partition keyed `partition`): the incident it closes
        (announce the all-clear), else None."""
        if partition is not None:
            self.cleared_on[key] = max(partition, self.cleared_on.get(key, ""))
        return self.open.pop(key, None)
