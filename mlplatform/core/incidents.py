"""Incidents: repeated failures of one cause are one incident, announced once when it opens and
once when it clears, with how many failures and which days it covered.

Kept as plain JSON (a sensor's cursor), so a daemon restart neither repeats nor forgets an alert.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field


@dataclass
class Incident:
    key: str
    cause: str
    opened_at: float
    last_seen: float
    failures: int = 1
    days: list[str] = field(default_factory=list)

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

    def failed(self, key: str, cause: str, day: str | None, at: float) -> Incident | None:
        """Record a failure; the incident when this failure opens it (announce it), else None."""
        if day is not None and day <= self.cleared_on.get(key, ""):
            return None
        incident = self.open.get(key)
        if incident is None:
            incident = self.open[key] = Incident(key, cause, opened_at=at, last_seen=at)
            if day:
                incident.days.append(day)
            return incident
        incident.failures += 1
        incident.last_seen = max(incident.last_seen, at)
        if day and day not in incident.days:
            incident.days = sorted([*incident.days, day])
        return None

    def cleared(self, key: str, day: str | None = None) -> Incident | None:
        """The cause passed again (on `day`): the incident it closes (announce the all-clear),
        else None."""
        if day is not None:
            self.cleared_on[key] = max(day, self.cleared_on.get(key, ""))
        return self.open.pop(key, None)
