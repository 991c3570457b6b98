"""Ingestion: one day of raw transactions from the data source, as delivered."""

import datetime as dt

import dagster as dg
import pandas as pd

from mlplatform.assets.common import preview
from mlplatform.config.active import CONTRACT, SETTINGS
from mlplatform.core.sources import PartitionSpan
from mlplatform.resources.data_source import DataSource
from mlplatform.stages import (
    carried_out,
    daily_partitions,
    day_of_partition_key,
    partition_day,
    stage_asset,
)


def current_partition_span() -> PartitionSpan:
    """The daily partitions that exist now, for placing rows by their event time."""
    from zoneinfo import ZoneInfo

    timezone = SETTINGS.partitions.timezone
    last = daily_partitions.get_last_partition_key()
    first = SETTINGS.partitions.start_date
    return PartitionSpan(
        first=first,
        last=day_of_partition_key(last) if last else first - dt.timedelta(days=1),
        today=dt.datetime.now(ZoneInfo(timezone)).date(),
        timezone=timezone,
    )


@stage_asset(
    "ingestion",
    kinds={"pandas", "parquet"},
    # The source's stage: it runs when asked (schedule, sensor, a click), not on upstream updates.
    automated=False,
    description="One day of raw transactions, as the data source delivers them (defects included; "
    "rows of the source's files that fall in no partition ride along to be quarantined).",
)
def raw_transactions(
    context: dg.AssetExecutionContext, data_source: DataSource
) -> dg.Output[pd.DataFrame]:
    from mlplatform.core.sources import outside_partitions_summary, rows_of_day

    contract = CONTRACT
    with carried_out(context, "ingestion", source=data_source.describe()):
        # A file the platform cannot use (unreadable, a contract column missing, no row for the
        # day) fails here, before anything is stored: the day's previous raw data stays.
        raw = data_source.read_day(
            partition_day(context), contract, current_partition_span(), log=context.log.info
        )
    outside = outside_partitions_summary(raw, contract)
    own_rows = len(rows_of_day(raw))
    if outside["rows"]:
        context.log.warning(
            f"{outside['rows']} row(s) of the source fall in no partition and go to quarantine "
            f"with this day{'' if own_rows else ' (which has no row of its own)'}: {outside}"
        )
    return dg.Output(
        raw,
        metadata={
            "dagster/row_count": len(raw),
            # The volume gate compares the day's own rows, not the ones carried to quarantine.
            "rows_of_the_day": own_rows,
            "rows_outside_every_partition": dg.MetadataValue.json(outside),
            "source": data_source.describe(),
            "contract": contract.source,
            "columns": dg.MetadataValue.json(list(map(str, raw.columns))),
            "preview": preview(context, raw),
        },
    )
