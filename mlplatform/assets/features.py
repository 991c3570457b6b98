"""Features over a trailing window of validated partitions, split by time."""

import dagster as dg
import pandas as pd

from mlplatform.assets.common import preview
from mlplatform.config.active import SETTINGS
from mlplatform.config.launchpad import launchpad_config
from mlplatform.resources.contract import DatasetContract
from mlplatform.stages import carried_out, stage_asset

WINDOW_DAYS = SETTINGS.features.window_days


# The split can change per run; the window cannot (it shapes the partition mapping below).
FeaturesConfig = launchpad_config(
    "FeaturesConfig",
    SETTINGS.features,
    fields=("validation_fraction", "test_fraction"),
    rules=("_leave_room_to_train",),
)


@stage_asset(
    "features",
    kinds={"pandas", "parquet"},
    description=(
        f"Model features from the trailing {WINDOW_DAYS}-day window of validated transactions "
        "ending on the partition's day, with a time-based train / validation / test split."
    ),
    ins={
        "validated_transactions": dg.AssetIn(
            partition_mapping=dg.TimeWindowPartitionMapping(
                start_offset=-(WINDOW_DAYS - 1),
                end_offset=0,
                allow_nonexistent_upstream_partitions=True,
            ),
            # Days of the window not yet materialized are skipped (and logged), so the first day
            # of a new deployment can train on what exists.
            metadata={"allow_missing_partitions": True},
        )
    },
)
def features(
    context: dg.AssetExecutionContext,
    config: FeaturesConfig,
    validated_transactions: pd.DataFrame,
    dataset_contract: DatasetContract,
) -> dg.Output[pd.DataFrame]:
    from mlplatform.checks.gate_history import failed_blocking_checks
    from mlplatform.core.days import days_present, on_any_day
    from mlplatform.core.features import LABEL_COLUMN, SPLIT_COLUMN, build_features, model_columns
    from mlplatform.core.validate import DatasetError

    contract = dataset_contract.load()
    with carried_out(context, "features"):
        # Days of the window whose blocking gates failed stay stored (the checked asset is kept)
        # but must not feed a model.
        times = validated_transactions[contract.event_time]
        excluded = {
            day: failed
            for day in days_present(times)
            if (
                failed := failed_blocking_checks(context.instance, "raw_transactions", day)
                + failed_blocking_checks(context.instance, "validated_transactions", day)
            )
        }
        if excluded:
            context.log.warning(f"Left out of the window, their gates failed: {excluded}")
            validated_transactions = validated_transactions[~on_any_day(times, list(excluded))]
        if validated_transactions.empty:
            raise DatasetError(f"every day of the window failed its gates: {excluded}")
        table = build_features(
            validated_transactions,
            contract,
            validation_fraction=config.validation_fraction,
            test_fraction=config.test_fraction,
        )
    categorical, numeric = model_columns(table, contract)
    by_split = table.groupby(SPLIT_COLUMN, observed=False)[LABEL_COLUMN].agg(["size", "mean"])
    found_days = days_present(table[contract.event_time])
    return dg.Output(
        table,
        metadata={
            "dagster/row_count": len(table),
            "window_days_configured": WINDOW_DAYS,
            "window_days_found": dg.MetadataValue.json(found_days),
            "window_days_excluded": dg.MetadataValue.json(excluded),
            "categorical_features": dg.MetadataValue.json(categorical),
            "numeric_features": dg.MetadataValue.json(numeric),
            **{f"rows_{split}": int(row["size"]) for split, row in by_split.iterrows()},
            **{
                f"label_rate_{split}": dg.MetadataValue.float(round(float(row["mean"]), 6))
                for split, row in by_split.iterrows()
            },
            "preview": preview(context, table),
        },
    )
