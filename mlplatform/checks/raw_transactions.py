import datetime as dt
from collections.abc import Iterator

import dagster as dg
import pandas as pd

from mlplatform.automation.execution import step_tags
from mlplatform.automation.policies import carried_out, retry_policy
from mlplatform.checks.common import gate_results, gate_specs
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
        window = (
            context.partition_time_window if hasattr(context, "partition_time_window") else None
        )
        end = (
            pd.Timestamp(window.end)
            if window is not None
            else pd.Timestamp(context.partition_key, tz="UTC") + pd.Timedelta(days=1)
        )
        history = row_count_history(
            context.instance, context.partition_key, gates.volume_in_band.lookback_partitions
        )
        yield from gate_results(
            ASSET,
            gates,
            quality.raw_transactions_gates(raw_transactions, contract, gates, end, history),
        )
