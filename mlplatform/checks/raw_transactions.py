import datetime as dt
from collections.abc import Iterator

import dagster as dg
import pandas as pd

from mlplatform.checks.common import gate_checks, gate_results
from mlplatform.config.active import CONTRACT, GATES
from mlplatform.core import data_gates
from mlplatform.instance_queries import materializations_of_partitions
from mlplatform.stages import carried_out, partition_day, partition_key_of

ASSET = "raw_transactions"


def row_count_history(instance: dg.DagsterInstance, day: dt.date, lookback: int) -> dict[str, int]:
    """Row counts of the earlier partitions, read from their materialization metadata: the day's
    own rows where recorded (a partition may also carry rows of its files that fall in no
    partition, on their way to quarantine)."""
    keys = [partition_key_of(day - dt.timedelta(days=i)) for i in range(1, lookback + 1)]
    records = materializations_of_partitions(instance, ASSET, keys, limit=lookback * 5)
    history: dict[str, int] = {}
    for record in records:  # newest first: the latest materialization of each day wins
        metadata = record.asset_materialization.metadata if record.asset_materialization else {}
        if record.partition_key in history:
            continue
        # `or` would read a day with none of its own rows as the count of the rows it carries.
        count = metadata.get("rows_of_the_day")
        if count is None:
            count = metadata.get("dagster/row_count")
        if count is not None:
            history[record.partition_key] = int(count.value)
    return history


@gate_checks(
    ASSET,
    {
        "schema_matches_contract": "Every column of the dataset contract is present.",
        "not_empty": "The day has rows.",
        "fresh": "The newest event is close to the end of the day.",
        "volume_in_band": "Row count within a band around the median of earlier days.",
    },
)
def raw_transactions_checks(
    context: dg.AssetCheckExecutionContext,
    raw_transactions: pd.DataFrame,
) -> Iterator[dg.AssetCheckResult]:
    from mlplatform.core.sources import rows_of_day

    with carried_out(context, "checks"):
        contract, gates = CONTRACT, GATES.raw_transactions
        # Rows carried to quarantine (dated in no partition) say nothing about the day's volume
        # or freshness.
        of_day = rows_of_day(raw_transactions)
        end = pd.Timestamp(context.partition_time_window.end)
        history = row_count_history(
            context.instance, partition_day(context), gates.volume_in_band.lookback_partitions
        )
        outcomes = data_gates.raw_transactions_gates(
            of_day, contract, gates, end, history, carried_rows=len(raw_transactions) - len(of_day)
        )
        yield from gate_results(ASSET, gates, outcomes)
