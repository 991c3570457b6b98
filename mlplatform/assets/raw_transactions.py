import dagster as dg
import pandas as pd

from mlplatform.assets.common import (
    OWNER,
    daily_partitions,
    partition_day,
    preview,
)
from mlplatform.automation.execution import step_tags
from mlplatform.automation.policies import carried_out, retry_policy
from mlplatform.resources.contract import DatasetContract
from mlplatform.resources.data_source import DataSource


@dg.asset(
    partitions_def=daily_partitions,
    group_name="ingestion",
    kinds={"pandas", "parquet"},
    owners=[OWNER],
    retry_policy=retry_policy("ingestion"),
    op_tags=step_tags("ingestion"),
    description="One day of raw transactions, as the data source delivers them (defects included).",
)
def raw_transactions(
    context: dg.AssetExecutionContext, data_source: DataSource, dataset_contract: DatasetContract
) -> dg.Output[pd.DataFrame]:
    day = partition_day(context)
    where = f"raw_transactions[{day}] from {data_source.describe()}"
    with carried_out(context, "ingestion", where):
        contract = dataset_contract.load()
        raw = data_source.read_day(day, contract)
    return dg.Output(
        raw,
        metadata={
            "dagster/row_count": len(raw),
            "source": data_source.describe(),
            "contract": contract.source,
            "columns": dg.MetadataValue.json(list(map(str, raw.columns))),
            "preview": preview(context, raw),
        },
    )
