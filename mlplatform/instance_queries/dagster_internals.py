"""Dagster's names the instance queries need that `dagster` does not export (1.13): imported here
and nowhere else in mlplatform/ (the step preload aside, which imports modules by name, each on its
own). A Dagster release that moves one breaks this module's import, and
mlplatform_tests/test_instance_queries.py says which query it was for."""

from dagster._core.definitions.events import AssetKeyPartitionKey
from dagster._core.event_api import PartitionKeyFilter
from dagster._core.execution.backfill import BulkActionsFilter, BulkActionStatus
from dagster._core.launcher import CheckRunHealthResult, WorkerStatus
from dagster._core.storage.asset_check_execution_record import (
    AssetCheckExecutionRecordStatus as CheckStatus,
)

__all__ = [
    "AssetKeyPartitionKey",
    "BulkActionStatus",
    "BulkActionsFilter",
    "CheckRunHealthResult",
    "CheckStatus",
    "PartitionKeyFilter",
    "WorkerStatus",
]
