"""What the instance remembers about quality gate results across runs."""

import dagster as dg

from mlplatform.config.active import GATES
from mlplatform.instance_queries import check_execution_failed, check_execution_passed
from mlplatform.instance_queries import completed_check_executions as completed_evaluations

__all__ = [
    "blocking_checks",
    "completed_evaluations",
    "evaluation_verdict",
    "failed_blocking_checks",
]


def blocking_checks(asset: str) -> list[str]:
    section = getattr(GATES, asset)
    return [name for name in type(section).model_fields if getattr(section, name).blocking]


def failed_blocking_checks(instance: dg.DagsterInstance, asset: str, partition: str) -> list[str]:
    """The blocking checks of `asset` whose latest evaluation for `partition` failed."""
    failed = []
    for name in blocking_checks(asset):
        latest = next(iter(completed_evaluations(instance, asset, name, partition, limit=1)), None)
        if latest is not None and check_execution_failed(latest):
            failed.append(name)
    return failed


def evaluation_verdict(record) -> tuple[str, dict]:
    """`passed`, `failed` or `inconclusive` (too little evidence: a warning that judges nothing)
    for one completed check evaluation, with its metadata as plain values."""
    evaluation = record.event.asset_check_evaluation if record.event else None
    metadata = {k: v.value for k, v in (evaluation.metadata if evaluation else {}).items()}
    if metadata.get("inconclusive"):
        return "inconclusive", metadata
    if check_execution_passed(record):
        return "passed", metadata
    return "failed", metadata
