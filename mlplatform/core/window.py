"""The trailing window of days a model is trained on: which days it holds, which are legitimately
absent, and which are still to come. No Dagster here: the caller tells what each day's state is."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field
from enum import StrEnum


class DayState(StrEnum):
    # Materialized, and its blocking gates passed: part of the training data.
    INCLUDED = "included"
    # Before the partitions' first day: there is nothing to wait for.
    BEFORE_START = "before the start"
    # Its data was attempted and failed a blocking gate: absent by design.
    FAILED_GATES = "failed its gates"
    # Not materialized, and a queued or running run, a run about to be retried or a backfill in
    # progress will write it: training on the window now would train on part of it.
    PENDING = "still to come"
    # Not materialized and nothing will write it: the window is partial.
    MISSING = "not materialized"


LEGITIMATELY_ABSENT = {DayState.BEFORE_START, DayState.FAILED_GATES}


def window_days(day: dt.date, window: int) -> list[dt.date]:
    """The `window` days ending on `day`, oldest first."""
    return [day - dt.timedelta(days=back) for back in range(window - 1, -1, -1)]


def _ranges(days: list[dt.date]) -> str:
    """`2026-01-01..03, 2026-01-05`: consecutive days joined."""
    parts: list[list[dt.date]] = []
    for day in sorted(days):
        if parts and day - parts[-1][-1] == dt.timedelta(days=1):
            parts[-1].append(day)
        else:
            parts.append([day])
    return ", ".join(_span(run[0], run[-1]) for run in parts)


def _span(first: dt.date, last: dt.date) -> str:
    if first == last:
        return first.isoformat()
    # Within one month the second day is written short: 2026-01-01..02.
    same_month = (first.year, first.month) == (last.year, last.month)
    return f"{first.isoformat()}..{f'{last.day:02d}' if same_month else last.isoformat()}"


@dataclass(frozen=True)
class WindowStatus:
    """Each day of the window and what it is; `reasons` add detail (which gates, which run)."""

    states: dict[dt.date, DayState]
    reasons: dict[dt.date, str] = field(default_factory=dict)

    def days(self, state: DayState) -> list[dt.date]:
        return [day for day, each in self.states.items() if each == state]

    @property
    def pending(self) -> list[dt.date]:
        return self.days(DayState.PENDING)

    @property
    def complete(self) -> bool:
        """Every day that could hold data does: no day missing, none still to come."""
        return not self.days(DayState.PENDING) and not self.days(DayState.MISSING)

    def summary(self) -> str:
        """`window complete: 7/7 days`, or what is absent and why: `window complete: 5/7 days:
        2026-01-03 failed its gates; 2026-01-01..02 before the start`."""
        included = len(self.days(DayState.INCLUDED))
        head = f"{'window complete' if self.complete else 'window PARTIAL'}: "
        head += f"{included}/{len(self.states)} days"
        absent = [
            f"{_ranges(days)} {state.value}"
            for state in (
                DayState.MISSING,
                DayState.PENDING,
                DayState.FAILED_GATES,
                DayState.BEFORE_START,
            )
            if (days := self.days(state))
        ]
        return head + (": " + "; ".join(absent) if absent else "")
