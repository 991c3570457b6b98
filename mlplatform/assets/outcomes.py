"""Outcomes: what happened to the events, arriving days later as records of their own (id, outcome,
when it became known), one partition per day of arrival. Each record joins its event or goes to
quarantine with the reason; every record is counted: in = joined + quarantined."""

from collections.abc import Iterator

import dagster as dg
import numpy as np
import pandas as pd

from mlplatform.assets.common import preview
from mlplatform.assets.raw_transactions import current_partition_span
from mlplatform.config.active import CONTRACT, SETTINGS
from mlplatform.resources.data_source import DataSource
from mlplatform.stages import carried_out, partition_day, stage_multi_asset, stage_output

# Outcomes name events of up to this many days before they arrive (the contract's). A dataset
# without outcomes leaves this asset out of the Definitions; 1 keeps its definition valid (a
# window of earlier days needs one day at least).
MAX_DELAY_DAYS = CONTRACT.outcomes.max_delay_days if CONTRACT.outcomes else 1


@stage_multi_asset(
    "ingestion",
    name="outcomes",
    outs={
        "outcomes": stage_output(
            {"pandas", "parquet"},
            "Outcomes that became known on the partition's day, each joined to its event "
            "(id, 0/1 outcome, known_at, event time and day).",
            # The source's stage: read when asked (the day's run), like raw_transactions.
            automated=False,
        ),
        "quarantined_outcomes": stage_output(
            {"pandas", "parquet"},
            "Outcome records that could not join an event, as they arrived, with the reason.",
            automated=False,
        ),
    },
    ins={
        # The events an outcome of the day may name: those of the days it may be late by.
        "validated_transactions": dg.AssetIn(
            partition_mapping=dg.TimeWindowPartitionMapping(
                start_offset=-MAX_DELAY_DAYS,
                end_offset=0,
                allow_nonexistent_upstream_partitions=True,
            ),
            metadata={"allow_missing_partitions": True, "allow_no_partitions": True},
        ),
        # The outcomes that arrived before, for duplicates and conflicts across days.
        "earlier_outcomes": dg.AssetIn(
            key="outcomes",
            partition_mapping=dg.TimeWindowPartitionMapping(
                start_offset=-MAX_DELAY_DAYS,
                end_offset=-1,
                allow_nonexistent_upstream_partitions=True,
            ),
            metadata={"allow_missing_partitions": True, "allow_no_partitions": True},
        ),
    },
)
def outcomes(
    context: dg.AssetExecutionContext,
    validated_transactions: pd.DataFrame,
    # None on the first partition: it has no earlier day to map to (the IO manager is not asked).
    earlier_outcomes: pd.DataFrame | None,
    data_source: DataSource,
) -> Iterator[dg.Output]:
    from mlplatform.core import outcomes as core
    from mlplatform.core import reconciled_outcomes
    from mlplatform.core.sources import SOURCE_FILE_COLUMN, SOURCE_RECORD_COLUMN
    from mlplatform.core.validate import OUTSIDE_PARTITIONS_COLUMN

    contract = CONTRACT
    timezone = SETTINGS.partitions.timezone
    if data_source.kind == "files" and not data_source.outcomes_path:
        context.log.warning(
            f"The contract {contract.source} declares outcomes, but outcomes.path "
            "(MLPLATFORM_OUTCOMES_PATH) is not set: no outcome is read, so no scored day gains "
            "its realized performance"
        )
    known_at = contract.outcomes.known_at
    with carried_out(context, "ingestion", source=data_source.describe_outcomes()):
        records = data_source.read_outcomes(
            partition_day(context), contract, current_partition_span(), log=context.log.info
        )
        # Records of the outcome files that fall in no partition ride with the first day, to be
        # quarantined with the reason the reader gave.
        outside = (
            records[OUTSIDE_PARTITIONS_COLUMN].notna().to_numpy()
            if OUTSIDE_PARTITIONS_COLUMN in records.columns
            else np.zeros(len(records), dtype=bool)
        )
        carried = records[outside]
        records = records[~outside].drop(columns=[OUTSIDE_PARTITIONS_COLUMN], errors="ignore")
        if SOURCE_RECORD_COLUMN in records.columns:
            # A reason that points at another record (a duplicate's first) names its file and
            # number there; each record's own ride along as columns.
            records.index = pd.Index(
                records[SOURCE_RECORD_COLUMN].astype(str) + " of " + records[SOURCE_FILE_COLUMN],
                dtype=object,
            )
        events = (
            core.events_index(validated_transactions, contract.id, contract.event_time)
            if len(validated_transactions)
            else pd.Series(dtype="datetime64[ns, UTC]")
        )
        known = (
            core.known_outcomes(earlier_outcomes, contract.id)
            if earlier_outcomes is not None and len(earlier_outcomes)
            else None
        )
        try:
            result = core.reconcile_outcomes(
                records, core.spec_of(contract), partition_day(context), events, known, timezone
            )
        except core.OutcomeColumnsError as error:
            raise dg.Failure(
                f"outcomes[{context.partition_key}] from {data_source.describe_outcomes()}: "
                f"{error}",
                allow_retries=False,
            ) from None
        quarantined = reconciled_outcomes.with_carried(
            result.quarantined, carried, OUTSIDE_PARTITIONS_COLUMN, known_at
        )
    summary = result.summary
    reasons = {
        **summary.reason_counts,
        **reconciled_outcomes.carried_reason_counts(carried, OUTSIDE_PARTITIONS_COLUMN, known_at),
    }
    records_in = summary.records_in + len(carried)
    context.log.info(
        f"{records_in} outcome record(s): {summary.joined} joined, {len(quarantined)} quarantined "
        f"{reasons or ''}; events of {list(summary.event_days)} gained outcomes"
    )
    yield dg.Output(
        result.joined,
        output_name="outcomes",
        metadata={
            "dagster/row_count": summary.joined,
            "records_in": records_in,
            "joined": summary.joined,
            "quarantined": len(quarantined),
            "positives": summary.positives,
            # Read by the outcomes_arrived sensor: these days' realized performance is redone.
            "event_days": dg.MetadataValue.json(list(summary.event_days)),
            "source": data_source.describe_outcomes(),
            "preview": preview(context, result.joined),
        },
    )
    yield dg.Output(
        quarantined,
        output_name="quarantined_outcomes",
        metadata={
            "dagster/row_count": len(quarantined),
            "reasons": dg.MetadataValue.json(reasons),
            "reasons_table": dg.MetadataValue.md(
                "| reason | records |\n| --- | --- |\n"
                + "".join(f"| {reason} | {count} |\n" for reason, count in reasons.items())
            ),
            "preview": preview(context, quarantined),
        },
    )
