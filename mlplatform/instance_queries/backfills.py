"""Backfills: those in progress, a backfill's status, its runs and the days it has still to do."""

from collections.abc import Iterable, Sequence
from typing import Any

import dagster as dg

from mlplatform.instance_queries.dagster_internals import (
    AssetKeyPartitionKey,
    BulkActionsFilter,
    BulkActionStatus,
)
from mlplatform.instance_queries.tags import BACKFILL_ID_TAG, PARTITION_TAG


def requested_backfills(instance: dg.DagsterInstance) -> Sequence[Any]:
    """The backfills in progress (REQUESTED: still submitting or waiting for their runs)."""
    return instance.get_backfills(filters=BulkActionsFilter(statuses=[BulkActionStatus.REQUESTED]))


def backfill_status(instance: dg.DagsterInstance, backfill_id: str) -> str | None:
    """The status of a backfill (a BulkActionStatus value: REQUESTED, COMPLETED_SUCCESS,
    CANCELED...), or None when the instance holds no such backfill."""
    backfill = instance.get_backfill(backfill_id)
    return backfill.status.value if backfill is not None else None


def backfill_has_run_of_partition(
    instance: dg.DagsterInstance, backfill_id: str, partition: str
) -> bool:
    """Whether backfill `backfill_id` has created a run of `partition`."""
    tags = {BACKFILL_ID_TAG: backfill_id, PARTITION_TAG: partition}
    return bool(instance.get_run_ids(dg.RunsFilter(tags=tags), limit=1))


def asset_backfill_partitions_to_come(
    backfill: Any, asset_graph: Any, key: dg.AssetKey, partitions: Iterable[str]
) -> list[str]:
    """The `partitions` of `key` an asset backfill targets and has neither materialized nor given
    up on (failed, or downstream of a failure). Raises when the backfill cannot be read against
    `asset_graph` (its definitions have changed since)."""
    data = backfill.get_asset_backfill_data(asset_graph)
    return [
        partition
        for partition in partitions
        if (target := AssetKeyPartitionKey(key, partition)) in data.target_subset
        and target not in data.materialized_subset
        and target not in data.failed_and_downstream_subset
    ]
