"""The failure an error that must not be retried becomes: one builder for the stages' error policy
and the IO managers', so both fail fast with the same description and metadata."""

import dagster as dg

from mlplatform.config.orchestration import ErrorRule

NO_RULE = "no rule matches (a programming error or an unclassified one): not retried"


def failing_fast(where: str, error: BaseException, rule: ErrorRule | None) -> dg.Failure:
    """A `dg.Failure` without retry naming `where` and the error. A rule's errors say what is
    wrong in their own words; an unclassified one is named by its class."""
    described = str(error) if rule is not None else f"{type(error).__name__}: {error}"
    return dg.Failure(
        description=f"{where}: {described}",
        metadata={
            "error_class": type(error).__name__,
            "severity": "critical",
            "policy": rule.name if rule is not None else NO_RULE,
        },
        allow_retries=False,
    )
