"""Ingestion: one day of raw transactions from the data source, as delivered."""

import dagster as dg
import pandas as pd

from mlplatform.assets.common import partition_day, preview
from mlplatform.resources.contract import DatasetContract
from mlplatform.resources.data_source import DataSource
from mlplatform.stages import carried_out, stage_asset


@stage_asset(
    "ingestion",
    kinds={"pandas", "parquet"},
    # The source's stage: it runs when asked (schedule, sensor, a click), not on upstream updates.
    automated=False,
    description="One day of raw transactions, as the data source delivers them (defects included).",
)
def raw_transactions(
    context: dg.AssetExecutionContext, data_source: DataSource, dataset_contract: DatasetContract
) -> dg.Output[pd.DataFrame]:
    with carried_out(context, "ingestion", source=data_source.describe()):
        contract = dataset_contract.load()
        raw = data_source.read_day(partition_day(context), contract)
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
