"""Run config for the Launchpad, derived from the settings models: each setting's type, bounds and
allowed values are declared once (in `mlplatform.config.settings`), its default once (in the YAML).

A value the Launchpad's schema can check (a misspelt choice: Dagster turns a `Literal` into an
enum) is refused before the run starts, with the allowed values listed; one only the settings model
can check (a bound, a rule across fields) fails its step at once, never retried.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import dagster as dg
from pydantic import ValidationError, create_model, model_validator
from pydantic.fields import FieldInfo

from mlplatform.config.loading import StrictModel, describe_validation_error


class LaunchpadConfig(dg.Config):
    """Run config whose invalid values fail fast: retrying cannot fix a setting."""

    def __init__(self, **values: Any) -> None:
        try:
            super().__init__(**values)
        except ValidationError as error:
            raise dg.Failure(
                description=describe_validation_error(f"run config {type(self).__name__}", error),
                allow_retries=False,
            ) from None


def launchpad_config(
    name: str, section: StrictModel, fields: Iterable[str] | None = None
) -> type[LaunchpadConfig]:
    """A `dg.Config` class with `section`'s fields (or those named), their types, bounds and
    descriptions, and the loaded values as defaults. The section's rules across fields come too
    (they may only read the fields kept)."""
    model = type(section)
    kept = list(model.model_fields) if fields is None else list(fields)
    declared = {
        field: (
            model.model_fields[field].annotation,
            FieldInfo.merge_field_infos(model.model_fields[field], default=getattr(section, field)),
        )
        for field in kept
    }
    rules = {
        rule_name: model_validator(mode=rule.info.mode)(rule.func)  # type: ignore[call-overload]
        for rule_name, rule in model.__pydantic_decorators__.model_validators.items()
    }
    return create_model(  # type: ignore[call-overload,no-any-return]
        name,
        __base__=LaunchpadConfig,
        __doc__=model.__doc__,
        __validators__=rules,
        **declared,
    )
