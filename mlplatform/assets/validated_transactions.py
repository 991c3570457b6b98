"""Validation against the dataset contract: validated rows go on, rejected rows go to quarantine
with the reason, never dropped silently."""

from collections.abc import Iterator

import dagster as dg
import pandas as pd

from mlplatform.assets.common import column_schema, preview
from mlplatform.config.active import CONTRACT, SETTINGS
from mlplatform.stages import carried_out, stage_multi_asset, stage_output


# The op is named after the stage's main asset, so step, op and asset share one name.
@stage_multi_asset(
    "validation",
    name="validated_transactions",
    outs={
        "validated_transactions": stage_output(
            {"pandas", "parquet", "pandera"},
            "Rows that satisfy the dataset contract, coerced to its types.",
        ),
        "quarantined_transactions": stage_output(
            {"pandas", "parquet"},
            "Rejected rows as they arrived, with the reason they were rejected.",
        ),
    },
)
def validated_transactions(
    context: dg.AssetExecutionContext,
    raw_transactions: pd.DataFrame,
) -> Iterator[dg.Output]:
    from mlplatform.core.days import in_time_zone
    from mlplatform.core.features import positive_label_flags
    from mlplatform.core.validate import validate

    contract = CONTRACT
    with carried_out(context, "validation"):
        outcome = validate(
            raw_transactions, contract, source=f"raw_transactions[{context.partition_key}]"
        )
        # Every day taken downstream (the feature window, the day scored, the day's rows the
        # drift gate compares) is then the day the partitions cut, in the dataset's time zone.
        outcome.validated = in_time_zone(
            outcome.validated, contract.event_time, SETTINGS.partitions.timezone
        )
    if outcome.ignored_columns:
        context.log.warning(f"Columns not in the contract were ignored: {outcome.ignored_columns}")
    yield dg.Output(
        outcome.validated,
        output_name="validated_transactions",
        metadata={
            "dagster/row_count": len(outcome.validated),
            "dagster/column_schema": column_schema(contract),
            "quarantined_rows": len(outcome.quarantined),
            "quarantine_rate": dg.MetadataValue.float(round(outcome.quarantine_rate, 6)),
            # Labels that arrive as outcomes are not the events': there is no rate to show here.
            "label_rate": (
                dg.MetadataValue.text("labels come from outcomes")
                if contract.labels_from_outcomes
                else dg.MetadataValue.float(
                    round(
                        float(
                            positive_label_flags(
                                outcome.validated[contract.target], contract.positive_label
                            ).mean()
                        ),
                        6,
                    )
                )
            ),
            "ignored_columns": dg.MetadataValue.json(outcome.ignored_columns),
            "preview": preview(context, outcome.validated),
        },
    )
    yield dg.Output(
        outcome.quarantined,
        output_name="quarantined_transactions",
        metadata={
            "dagster/row_count": len(outcome.quarantined),
            "quarantine_rate": dg.MetadataValue.float(round(outcome.quarantine_rate, 6)),
            "reasons": dg.MetadataValue.json(outcome.reason_counts),
            "reasons_table": dg.MetadataValue.md(
                "| reason | rows |\n| --- | --- |\n"
                + "".join(
                    f"| {reason} | {count} |\n" for reason, count in outcome.reason_counts.items()
                )
            ),
            "preview": preview(context, outcome.quarantined),
        },
    )
