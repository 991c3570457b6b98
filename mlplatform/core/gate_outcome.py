"""What a quality gate found: whether it passes, what was observed against what threshold, and
the details a person needs to see why. Every gate of core returns one; the asset checks report
it."""

from dataclasses import dataclass, field
from typing import Any


@dataclass
class GateOutcome:
    passed: bool
    observed: Any
    threshold: Any
    summary: str
    details: dict[str, Any] = field(default_factory=dict)
    # Too little evidence to judge (a test split with a handful of positives): reported as a
    # warning, never as a block, whatever the gate's severity.
    inconclusive: bool = False
