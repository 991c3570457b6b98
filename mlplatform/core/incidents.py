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
    """The open incidents by key (one cause: a failing check of one model version, say)."""

    open: dict[str, Incident] = field(default_factory=dict)

    @classmethod
    def parse(cls, text: str | None) -> IncidentBook:
        if not text:
            return cls()
        data = json.loads(text)
        return cls({key: Incident(**value) for key, value in data.get("open", {}).items()})

    def serialize(self) -> str:
        return json.dumps({"open": {k: asdict(v) for k, v in self.open.items()}}, sort_keys=True)

    def failed(self, key: str, cause: str, day: str | None, at: float) -> Incident | None:
        """Record a failure; the incident when this failure opens it (announce it), else None."""
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

    def cleared(self, key: str) -> Incident | None:
        """The cause passed again: the incident it closes (announce the all-clear), else None."""
        return self.open.pop(key, None)
