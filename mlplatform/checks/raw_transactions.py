import datetime as dt
from collections.abc import Iterator

import dagster as dg
import pandas as pd

from mlplatform.automation.execution import step_tags
from mlplatform.automation.policies import carried_out, retry_policy
from mlplatform.checks.common import gate_result, gate_specs
from mlplatform.config.active import GATES
from mlplatform.config.gates import gates_for
from mlplatform.core import quality
from mlplatform.resources.contract import DatasetContract

ASSET = "raw_transactions"
gates = GATES.raw_transactions


def row_count_history(
    instance: dg.DagsterInstance, partition_key: str, lookback: int
) -> dict[str, int]:
    """Row counts of the earlier partitions, read from their materialization metadata."""
    day = dt.date.fromisoformat(partition_key)
    keys = [(day - dt.timedelta(days=i)).isoformat() for i in range(1, lookback + 1)]
    records = instance.fetch_materializations(
        dg.AssetRecordsFilter(asset_key=dg.AssetKey(ASSET), asset_partitions=keys),
        limit=lookback * 5,
    ).records
    history: dict[str, int] = {}
    for record in records:  # newest first: the latest materialization of each day wins
        metadata = record.asset_materialization.metadata if record.asset_materialization else {}
        if record.partition_key not in history and "dagster/row_count" in metadata:
            history[record.partition_key] = int(metadata["dagster/row_count"].value)
    return history


@dg.multi_asset_check(
    name="raw_transactions_checks",
    retry_policy=retry_policy("checks"),
    op_tags=step_tags("checks"),
    specs=gate_specs(
        ASSET,
        gates,
        {
            "schema_matches_contract": "Every column of the dataset contract is present.",
            "not_empty": "The day has rows.",
            "fresh": "The newest event is close to the end of the day.",
            "volume_in_band": "Row count within a band around the median of earlier days.",
        },
    ),
)
def raw_transactions_checks(
    context: dg.AssetCheckExecutionContext,
    raw_transactions: pd.DataFrame,
    dataset_contract: DatasetContract,
) -> Iterator[dg.AssetCheckResult]:
    where = f"raw_transactions_checks[{context.partition_key}]"
    with carried_out(context, "checks", where):
        contract = dataset_contract.load()
        gates = gates_for(contract.name).raw_transactions
        yield gate_result(
            ASSET,
            "schema_matches_contract",
            gates.schema_matches_contract,
            quality.schema_matches_contract(raw_transactions, contract),
        )
        rows = len(raw_transactions)
        yield gate_result(
            ASSET, "not_empty", gates.not_empty, quality.not_empty(rows, gates.not_empty.min_rows)
        )
        latest = None
        if contract.event_time in raw_transactions.columns and rows:
            times = pd.to_datetime(raw_transactions[contract.event_time], utc=True, errors="coerce")
            latest = times.max()
        window = (
            context.partition_time_window if hasattr(context, "partition_time_window") else None
        )
        end = (
            pd.Timestamp(window.end)
            if window is not None
            else pd.Timestamp(context.partition_key, tz="UTC") + pd.Timedelta(days=1)
        )
        yield gate_result(
            ASSET,
            "fresh",
            gates.fresh,
            quality.freshness(latest, end, gates.fresh.max_lag_minutes),
        )
        band = gates.volume_in_band
        history = row_count_history(
            context.instance, context.partition_key, band.lookback_partitions
        )
        yield gate_result(
            ASSET,
            "volume_in_band",
            band,
            quality.volume_in_band(rows, history, band.min_history, band.min_ratio, band.max_ratio),
        )
