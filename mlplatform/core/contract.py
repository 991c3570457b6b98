"""Dataset contracts: a YAML description of columns, types, ranges, id, event time and target."""

from __future__ import annotations

from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from mlplatform.core.domain_features import DOMAIN_FEATURES
from mlplatform.core.yaml_files import describe_yaml_error, parse_yaml

ColumnType = Literal["string", "category", "float", "integer", "boolean", "datetime"]
COLUMN_TYPES: tuple[str, ...] = ColumnType.__args__  # type: ignore[attr-defined]


class ContractError(ValueError):
    """A dataset contract is unreadable or inconsistent; the message names the file and key."""


class ColumnSpec(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    type: str
    nullable: bool = True
    min: float | None = None
    max: float | None = None
    categories: list[Any] | None = None
    # The categories are listed in their order (grades A1..G5, employment-length bands): the model
    # gets each value's position in the list, so "B" lies between "A" and "C".
    ordered: bool = False
    # Whether the column feeds the model as-is (ids and entity keys usually do not).
    feature: bool = True
    description: str | None = None

    @model_validator(mode="after")
    def _consistent(self) -> ColumnSpec:
        if self.type not in COLUMN_TYPES:
            raise ValueError(
                f"unknown column type '{self.type}' (known: {', '.join(COLUMN_TYPES)})"
            )
        if (self.min is not None or self.max is not None) and self.type not in ("float", "integer"):
            raise ValueError(f"min/max only apply to float and integer columns, not {self.type}")
        if self.min is not None and self.max is not None and self.min > self.max:
            raise ValueError(f"min ({self.min}) is above max ({self.max})")
        if self.type == "category" and not self.categories:
            raise ValueError("a category column needs its list of categories")
        if self.ordered and self.type != "category":
            raise ValueError(f"ordered applies to category columns, not {self.type}")
        return self


class OutcomesContract(BaseModel):
    """What happened to scored rows, arriving days after their events as records of their own
    (a chargeback weeks after the payment): each names an event by the contract's `id`, gives its
    outcome (values of the contract's target) and when it became known."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    # The record's column holding the outcome; the contract's target name when not given.
    outcome: str | None = None
    known_at: str = "known_at"
    # An outcome is looked for among the events of this many days before it became known; one
    # later than that is quarantined (its event is no longer among those scored and monitored).
    max_delay_days: int = Field(ge=1, le=366)
    # Where training labels come from. `events`: the events carry the target (their outcomes
    # only serve monitoring). `outcomes`: each event's label is its outcome, once known: a model
    # of a day learns only from the outcomes known by that day's end, the other rows wait; the
    # events need not carry the target (if they do, it is ignored).
    labels: Literal["events", "outcomes"] = "events"


class Contract(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    name: str = Field(pattern=r"^[A-Za-z][A-Za-z0-9_\-]*$")
    description: str = ""
    id: str
    event_time: str
    target: str
    positive_label: Any = 1
    # How many days after its event a row's label is known (a loan's default: months; a
    # chargeback: weeks). Rows younger than this on a partition's day are scored but kept out of
    # training, validation and test, and the feature window reaches back that much further.
    label_delay_days: int = Field(0, ge=0)
    roles: dict[Literal["entity", "amount", "device"], str] = {}
    domain_features: list[str] = []
    columns: dict[str, ColumnSpec]
    # Late outcomes of the events (post-deployment monitoring); None: the dataset has none.
    outcomes: OutcomesContract | None = None
    source: str = "<memory>"

    @model_validator(mode="after")
    def _references_exist(self) -> Contract:
        for key in ("id", "event_time", "target"):
            column = getattr(self, key)
            if column not in self.columns:
                raise ValueError(f"{key}: column '{column}' is not declared under columns")
        if self.columns[self.event_time].type != "datetime":
            raise ValueError(f"event_time: column '{self.event_time}' must have type datetime")
        self._positive_label_possible()
        if self.outcomes is not None:
            names = {self.id, self.outcomes.known_at, self.outcome_column}
            if len(names) != 3:
                raise ValueError(
                    "outcomes: the id, outcome and known_at columns of an outcome record must be "
                    f"three columns, got id '{self.id}', outcome '{self.outcome_column}', "
                    f"known_at '{self.outcomes.known_at}'"
                )
            if self.outcomes.labels == "outcomes" and self.label_delay_days:
                raise ValueError(
                    "label_delay_days applies to labels the events carry; with outcomes.labels: "
                    "outcomes, each outcome's known_at says when its label became known"
                )
        for role, column in self.roles.items():
            if column not in self.columns:
                raise ValueError(f"roles.{role}: column '{column}' is not declared under columns")
        for feature in self.domain_features:
            if feature not in DOMAIN_FEATURES:
                raise ValueError(
                    f"domain_features: unknown feature '{feature}' "
                    f"(known: {', '.join(sorted(DOMAIN_FEATURES))})"
                )
            missing = [r for r in DOMAIN_FEATURES[feature].roles if r not in self.roles]
            if missing:
                raise ValueError(
                    f"domain_features: '{feature}' needs roles {missing} to name columns"
                )
        return self

    def _positive_label_possible(self) -> None:
        """The positive label must be a value the target can hold: labels are compared as text
        (`1` matches 1 and "1"), and one that never occurs only shows later as a label rate of 0."""
        spec = self.columns[self.target]
        label = self.positive_label
        where = f"positive_label: {label!r}"
        if spec.categories is not None:
            if str(label) not in {str(category) for category in spec.categories}:
                raise ValueError(
                    f"{where} is not one of the categories of the target '{self.target}': "
                    f"{spec.categories}"
                )
        elif spec.type == "boolean":
            if not isinstance(label, bool):
                raise ValueError(f"{where}: the target '{self.target}' is boolean: true or false")
        elif spec.type in ("integer", "float"):
            # An integer column's values read as "1", never "1.0": such a label would match no row.
            kind, parse = ("an integer", int) if spec.type == "integer" else ("a number", float)
            try:
                number = parse(str(label))
            except ValueError:
                raise ValueError(f"{where}: the target '{self.target}' holds {kind}") from None
            if (spec.min is not None and number < spec.min) or (
                spec.max is not None and number > spec.max
            ):
                raise ValueError(
                    f"{where} lies outside the range of the target '{self.target}': "
                    f"[{spec.min}, {spec.max}]"
                )
        elif spec.type == "datetime":
            raise ValueError(f"target: column '{self.target}' is a datetime, not a label")

    @property
    def labels_from_outcomes(self) -> bool:
        """Whether training labels are the outcomes (`outcomes.labels: outcomes`), not the
        events' target."""
        return self.outcomes is not None and self.outcomes.labels == "outcomes"

    @property
    def event_columns(self) -> dict[str, ColumnSpec]:
        """The columns the events carry: every column, but the target when the labels come from
        outcomes (they arrive as outcome records of their own)."""
        if not self.labels_from_outcomes:
            return self.columns
        return {name: spec for name, spec in self.columns.items() if name != self.target}

    @property
    def outcome_column(self) -> str:
        """The outcome records' column holding the outcome (the target's name by default)."""
        return (self.outcomes and self.outcomes.outcome) or self.target

    def outcome_records(self) -> Contract:
        """The contract of the outcome records themselves (the id, the outcome, when it became
        known), so outcome files are read and cut into days by the same reader as the events:
        by when each outcome became known."""
        if self.outcomes is None:
            raise ValueError(f"{self.source}: the contract declares no outcomes")
        known_at, outcome = self.outcomes.known_at, self.outcome_column
        return Contract(
            name=f"{self.name}_outcomes",
            id=self.id,
            event_time=known_at,
            target=outcome,
            positive_label=self.positive_label,
            columns={
                self.id: ColumnSpec(type=self.columns[self.id].type, nullable=False),
                known_at: ColumnSpec(type="datetime", nullable=False),
                outcome: self.columns[self.target].model_copy(update={"nullable": False}),
            },
            source=f"{self.source} (outcomes)",
        )

    @property
    def feature_columns(self) -> list[str]:
        """Contract columns that feed the model directly."""
        reserved = {self.id, self.event_time, self.target}
        return [
            name for name, spec in self.columns.items() if spec.feature and name not in reserved
        ]


def parse_contract(data: dict[str, Any], source: str = "<memory>") -> Contract:
    try:
        return Contract.model_validate({**data, "source": source})
    except ValidationError as error:
        details = "; ".join(
            f"{'.'.join(str(p) for p in item['loc']) or '(top level)'}: "
            + ("unknown key" if item["type"] == "extra_forbidden" else item["msg"])
            for item in error.errors()
        )
        raise ContractError(f"{source}: invalid dataset contract: {details}") from None


def load_contract(path: str | Path) -> Contract:
    path = Path(path)
    try:
        data = parse_yaml(path.read_text())
    except OSError as error:
        raise ContractError(f"{path}: cannot read dataset contract ({error})") from error
    except yaml.YAMLError as error:
        raise ContractError(
            f"{path}: dataset contract is not valid YAML ({describe_yaml_error(error)})"
        ) from error
    if not isinstance(data, dict):
        raise ContractError(f"{path}: dataset contract must be a mapping")
    return parse_contract(data, source=str(path))
