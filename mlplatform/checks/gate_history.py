"""What the instance remembers about quality gate results across runs."""

import dagster as dg
from dagster._core.storage.asset_check_execution_record import (
    COMPLETED_ASSET_CHECK_EXECUTION_RECORD_STATUSES,
    AssetCheckExecutionRecordStatus,
)

from mlplatform.config.active import GATES


def blocking_checks(asset: str) -> list[str]:
    section = getattr(GATES, asset)
    return [name for name in type(section).model_fields if getattr(section, name).blocking]


def failed_blocking_checks(instance: dg.DagsterInstance, asset: str, partition: str) -> list[str]:
    """The blocking checks of `asset` whose latest evaluation for `partition` failed."""
    failed = []
    for name in blocking_checks(asset):
        latest = next(iter(completed_evaluations(instance, asset, name, partition, limit=1)), None)
        if latest is not None and latest.status == AssetCheckExecutionRecordStatus.FAILED:
            failed.append(name)
    return failed


def completed_evaluations(
    instance: dg.DagsterInstance,
    asset: str,
    check: str,
    partition: str | None = None,
    limit: int = 100,
) -> list:
    """Finished evaluations of a check (of one partition, when given), newest first; planned and
    skipped ones carry no result. The partition is filtered in storage: taking the newest N over
    all partitions and filtering afterwards misses a day once N newer days were checked."""
    from dagster._core.event_api import PartitionKeyFilter

    return list(
        instance.event_log_storage.get_asset_check_execution_history(
            dg.AssetCheckKey(dg.AssetKey(asset), check),
            limit=limit,
            status=set(COMPLETED_ASSET_CHECK_EXECUTION_RECORD_STATUSES),
            partition_filter=None if partition is None else PartitionKeyFilter(key=partition),
        )
    )


def evaluation_verdict(record) -> tuple[str, dict]:
    """`passed`, `failed` or `inconclusive` (too little evidence: a warning that judges nothing)
    for one completed check evaluation, with its metadata as plain values."""
    evaluation = record.event.asset_check_evaluation if record.event else None
    metadata = {k: v.value for k, v in (evaluation.metadata if evaluation else {}).items()}
    if metadata.get("inconclusive"):
        return "inconclusive", metadata
    if record.status == AssetCheckExecutionRecordStatus.SUCCEEDED:
        return "passed", metadata
    return "failed", metadata
