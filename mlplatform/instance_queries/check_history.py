"""Asset check executions across runs, from the instance's check index."""

from typing import Any

import dagster as dg

from mlplatform.instance_queries.dagster_internals import CheckStatus, PartitionKeyFilter

# A check execution that has an outcome (planned and skipped ones have none).
_COMPLETED_CHECK_STATUSES = frozenset({CheckStatus.SUCCEEDED, CheckStatus.FAILED})


def completed_check_executions(
    instance: dg.DagsterInstance,
    asset: str | dg.AssetKey,
    check: str,
    partition: str | None = None,
    limit: int = 100,
    cursor: int | None = None,
) -> list[Any]:
    """The `limit` newest executions of a check that have an outcome (passed or failed; planned
    and skipped ones have none), of one partition when given, older than the execution `cursor`
    (a record id) when given: AssetCheckExecutionRecords (`status`, `partition`, `event`, `id`),
    newest first. The partition is filtered in storage: taking the newest N over all partitions and
    filtering afterwards misses a day once N newer days were checked."""
    key = dg.AssetKey.from_user_string(asset) if isinstance(asset, str) else asset
    return list(
        instance.event_log_storage.get_asset_check_execution_history(
            dg.AssetCheckKey(key, check),
            limit=limit,
            cursor=cursor,
            status=set(_COMPLETED_CHECK_STATUSES),
            partition_filter=None if partition is None else PartitionKeyFilter(key=partition),
        )
    )


def check_execution_failed(record: Any) -> bool:
    """Whether a check execution record (of `completed_check_executions`) failed."""
    return record.status == CheckStatus.FAILED


def check_execution_passed(record: Any) -> bool:
    """Whether a check execution record (of `completed_check_executions`) passed."""
    return record.status == CheckStatus.SUCCEEDED
