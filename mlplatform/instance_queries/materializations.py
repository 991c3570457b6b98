"""Materializations: by asset, partition, run and storage id, from the asset index."""

from collections.abc import Iterable, Sequence
from typing import Any

import dagster as dg


def materialized_partitions(
    instance: dg.DagsterInstance, asset: str, partitions: Iterable[str] | None = None
) -> set[str]:
    """The partitions of `asset` (of `partitions`, when given: one grouped query of the asset's
    partition index) materialized at least once."""
    if partitions is None:
        return set(instance.get_materialized_partitions(dg.AssetKey(asset)))
    latest_ids = instance.get_latest_storage_id_by_partition(
        dg.AssetKey(asset), dg.DagsterEventType.ASSET_MATERIALIZATION, partitions=set(partitions)
    )
    return set(latest_ids)


def latest_materialization(
    instance: dg.DagsterInstance, asset: str, partition: str | None = None
) -> dg.EventLogRecord | None:
    """The newest materialization of `asset` (of its `partition`, when given), or None."""
    records = instance.fetch_materializations(
        dg.AssetRecordsFilter(
            asset_key=dg.AssetKey(asset),
            asset_partitions=[partition] if partition is not None else None,
        ),
        limit=1,
    ).records
    return records[0] if records else None


def materializations_of_partitions(
    instance: dg.DagsterInstance, asset: str, partitions: Iterable[str], limit: int
) -> Sequence[dg.EventLogRecord]:
    """The `limit` newest materializations of `asset` in any of `partitions`, newest first."""
    return instance.fetch_materializations(
        dg.AssetRecordsFilter(asset_key=dg.AssetKey(asset), asset_partitions=sorted(partitions)),
        limit=limit,
    ).records


def materializations_after(
    instance: dg.DagsterInstance, asset: str, after_storage_id: int | None, limit: int
) -> Sequence[dg.EventLogRecord]:
    """The first `limit` materializations of `asset` stored after `after_storage_id` (all, from
    the first, when None), oldest first: a cursor's way through them."""
    return instance.fetch_materializations(
        dg.AssetRecordsFilter(asset_key=dg.AssetKey(asset), after_storage_id=after_storage_id),
        limit=limit,
        ascending=True,
    ).records


def materialization_metadata_of_run(
    instance: dg.DagsterInstance, asset: str, run_id: str, among_newest: int = 20
) -> dict[str, Any] | None:
    """The metadata (plain values) of the materialization of `asset` by run `run_id`, looked for
    among the asset's `among_newest` newest materializations; None when not there."""
    records = instance.fetch_materializations(
        dg.AssetRecordsFilter(asset_key=dg.AssetKey(asset)), limit=among_newest
    ).records
    for record in records:
        if record.run_id == run_id and record.asset_materialization is not None:
            return {k: v.value for k, v in record.asset_materialization.metadata.items()}
    return None


def latest_partition_materializations(
    instance: dg.DagsterInstance, key: dg.AssetKey, newest: int
) -> Sequence[dg.EventLogRecord]:
    """The latest materialization of each of the `newest` newest partitions of `key` (partition
    keys sorted), from the asset index: the storage id of each partition's latest materialization
    (one grouped query), then those records only."""
    latest_ids = instance.get_latest_storage_id_by_partition(
        key, dg.DagsterEventType.ASSET_MATERIALIZATION
    )
    kept = sorted(latest_ids, reverse=True)[:newest]
    if not kept:
        return []
    return instance.fetch_materializations(
        dg.AssetRecordsFilter(asset_key=key, storage_ids=[latest_ids[p] for p in kept]),
        limit=len(kept),
    ).records


def asset_keys(instance: dg.DagsterInstance) -> list[dg.AssetKey]:
    """Every asset the instance holds a record of, from the asset index."""
    return [record.asset_entry.asset_key for record in instance.get_asset_records()]


def last_materialization_times(instance: dg.DagsterInstance) -> dict[dg.AssetKey, float]:
    """Asset -> Unix time of its newest materialization, from the asset index (one query)."""
    latest: dict[dg.AssetKey, float] = {}
    for record in instance.get_asset_records():
        entry = record.asset_entry.last_materialization
        if entry is not None:
            latest[record.asset_entry.asset_key] = entry.timestamp
    return latest
