"""Which column of a sample is the id, the event time and the target, and which target value is
the positive label: given by the user, or guessed from the typed sample and the columns' names,
each guess with its reason and the other candidates."""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

import pandas as pd

from mlplatform.core.type_inference import INTEGER_TEXT, plain_value
from mlplatform.core.validate import FALSE_STRINGS, TRUE_STRINGS

ID_WORDS = {"id", "key", "uuid", "guid"}
TIME_WORDS = {"time", "date", "timestamp", "ts", "datetime", "at", "created", "when", "day"}
# Names that say "this is what is predicted", then names of common binary outcomes.
TARGET_WORDS = {"target", "label", "y", "class", "outcome", "response"}
OUTCOME_WORDS = {
    "default", "defaulted", "churn", "churned", "fraud", "fraudulent", "bad", "status", "deny",
    "denied", "approved", "accepted", "purchase", "purchased", "converted", "clicked", "fail",
    "failed", "failure", "survived", "attrition", "delinquent", "chargeback",
}  # fmt: skip
POSITIVE_WORDS = {
    "1", "true", "t", "yes", "y", "bad", "fraud", "default", "churn", "positive", "pos", "deny",
    "denied", "fail", "failed", "failure", "event",
}  # fmt: skip


class DraftError(ValueError):
    """The sample cannot give a usable contract (no event time, no id, no target...); the message
    says which and what to do."""


@dataclass(frozen=True)
class Guess:
    """A column chosen for a role: given by the user (confirmed) or guessed, with the reason."""

    column: str
    confirmed: bool
    reason: str
    alternatives: tuple[str, ...] = ()

    def comment(self, role: str) -> str:
        if self.confirmed:
            return f"{role}: given on the command line"
        others = f"; other candidates: {', '.join(self.alternatives)}" if self.alternatives else ""
        return f"CONFIRM: guessed {role} ({self.reason}{others})"


def name_words(name: str) -> list[str]:
    """A column name's words, lower case: `customerID` -> customer, id; `is_fraud` -> is, fraud."""
    spaced = re.sub(r"([a-z0-9])([A-Z])", r"\1 \2", str(name))
    return [word for word in re.split(r"[^A-Za-z0-9]+", spaced.lower()) if word]


def guess_id(typed: pd.DataFrame, types: dict[str, str]) -> Guess | None:
    """A column unique and never missing in the sample, text or integer; an id-like name first."""
    candidates = [
        name
        for name in typed.columns
        if types[name] in ("string", "integer", "category")
        and typed[name].notna().all()
        and typed[name].is_unique
    ]
    named = [name for name in candidates if set(name_words(name)) & ID_WORDS]
    if named:
        reason = "unique in the sample, and its name says id"
        return Guess(named[0], False, reason, tuple(c for c in candidates if c != named[0]))
    if candidates:
        reason = "the first column unique in the sample; its name does not say id"
        return Guess(candidates[0], False, reason, tuple(candidates[1:]))
    return None


def guess_event_time(typed: pd.DataFrame, types: dict[str, str]) -> Guess | None:
    """A datetime column, a time-like name first, then the most distinct instants (a column with
    times of day rather than dates only)."""
    candidates = [name for name in typed.columns if types[name] == "datetime"]
    if not candidates:
        return None
    named = [name for name in candidates if set(name_words(name)) & TIME_WORDS]
    pool = named or candidates
    best = max(pool, key=lambda name: (-typed[name].isna().sum(), typed[name].nunique()))
    reason = (
        "parses as dates, and its name says time"
        if named
        else "parses as dates; its name does not say time"
    )
    return Guess(best, False, reason, tuple(c for c in candidates if c != best))


def _target_score(name: str) -> int:
    words = name_words(name)
    if set(words) & TARGET_WORDS:
        return 3
    if set(words) & OUTCOME_WORDS:
        return 2
    if words and words[0] in ("is", "has", "was", "will"):
        return 1
    return 0


def guess_target(typed: pd.DataFrame, types: dict[str, str], reserved: set[str]) -> Guess | None:
    """A column of exactly two values; a name that says label or a known outcome first, else the
    last such column (where a label usually sits)."""
    candidates = [
        name
        for name in typed.columns
        if name not in reserved
        and types[name] in ("category", "boolean", "integer", "float", "string")
        and typed[name].nunique() == 2
    ]
    if not candidates:
        return None
    best_score = max(_target_score(name) for name in candidates)
    top = [name for name in candidates if _target_score(name) == best_score]
    if best_score:
        chosen = top[0]
        reason = "two values, and its name says label or outcome"
    else:
        chosen = candidates[-1]
        reason = "the last column of two values; no name says label or outcome"
    return Guess(chosen, False, reason, tuple(c for c in candidates if c != chosen))


def guess_positive_label(values: pd.Series) -> tuple[Any, str]:
    """The value meaning "positive": a word that says so, else the rarer of the two."""
    counts = values.dropna().astype(object).value_counts()
    by_word = [v for v in counts.index if str(v).strip().lower() in POSITIVE_WORDS]
    if len(by_word) == 1:
        return plain_value(by_word[0]), f"CONFIRM: guessed positive label ('{by_word[0]}' says so)"
    rarer = counts.sort_values(kind="stable").index[0]
    share = counts[rarer] / counts.sum()
    return plain_value(
        rarer
    ), f"CONFIRM: guessed positive label (the rarer value, {share:.1%} of rows)"


def parse_label(text: str, column_type: str, values: pd.Series) -> Any:
    """A positive label given on the command line, in the target's type; one the sample never
    holds is refused with the values it does hold."""
    held = sorted({str(plain_value(v)) for v in values.dropna()})
    label: Any = text
    if column_type == "integer":
        label = int(text) if INTEGER_TEXT.match(text.strip()) else text
    elif column_type == "float":
        label = float(text) if re.match(r"^[+-]?[\d.]+(e[+-]?\d+)?$", text.strip(), re.I) else text
    elif column_type == "boolean":
        word = text.strip().lower()
        label = True if word in TRUE_STRINGS else False if word in FALSE_STRINGS else text
    if isinstance(label, str) and column_type in ("integer", "float", "boolean"):
        raise DraftError(f"--positive-label {text!r}: the target is {column_type}")
    if str(label) not in held and not any(
        isinstance(label, (int, float, bool)) and plain_value(v) == label for v in values.dropna()
    ):
        raise DraftError(f"--positive-label {text!r} is not a value of the target: {held}")
    return label
