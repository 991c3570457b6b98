"""Features over a trailing window of validated partitions, split by time."""

import datetime as dt
from typing import Any

import dagster as dg
import pandas as pd

from mlplatform.assets.common import preview
from mlplatform.config.active import CONTRACT, SETTINGS
from mlplatform.config.launchpad import launchpad_config
from mlplatform.stages import carried_out, partition_day, stage_asset

WINDOW_DAYS = SETTINGS.features.window_days
# Labels known only `label_delay_days` after the event: the window of labelled days ends that much
# before the partition's day, and the days in between are read too, to be scored.
LABEL_DELAY_DAYS = CONTRACT.label_delay_days
SPAN_DAYS = WINDOW_DAYS + LABEL_DELAY_DAYS
# Labels from outcomes (`outcomes.labels: outcomes` in the contract): the outcomes that arrived on
# the window's days are an input too. Fixed at load, like the window: it shapes the inputs.
LABELS_FROM_OUTCOMES = CONTRACT.labels_from_outcomes


def _window_of(asset: str, **metadata: bool) -> dg.AssetIn:
    return dg.AssetIn(
        key=asset,
        partition_mapping=dg.TimeWindowPartitionMapping(
            start_offset=-(SPAN_DAYS - 1),
            end_offset=0,
            allow_nonexistent_upstream_partitions=True,
        ),
        # Days before the partitions' start or failed by their gates are absent by design;
        # whether the others are all there (or still to come) is read from the instance.
        metadata={"allow_missing_partitions": True, **metadata},
    )


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
        + (
            " Labels: the outcomes known by the end of the partition's day; rows without one "
            "wait (scored, never learned from)."
            if LABELS_FROM_OUTCOMES
            else ""
        )
    ),
    ins={
        "validated_transactions": _window_of("validated_transactions"),
        # The outcomes that arrived on the window's days: every outcome of its events known by
        # the end of the partition's day (an outcome arrives on or after its event's day).
        # None may have arrived yet at all: an empty frame.
        **(
            {"outcomes": _window_of("outcomes", allow_no_partitions=True)}
            if LABELS_FROM_OUTCOMES
            else {}
        ),
    },
)
def features(
    context: dg.AssetExecutionContext,
    config: FeaturesConfig,
    validated_transactions: pd.DataFrame,
    # `outcomes` when the labels come from outcomes (an input only then, see `ins`).
    **label_inputs: pd.DataFrame,
) -> dg.Output[pd.DataFrame]:
    from mlplatform.assets.upstream_window import window_status
    from mlplatform.core.days import days_present, on_any_day
    from mlplatform.core.features import (
        LABEL_COLUMN,
        SPLIT_COLUMN,
        WAITING,
        build_features,
        model_columns,
    )
    from mlplatform.core.validate import DatasetError
    from mlplatform.core.window import DayState
    from mlplatform.stages import step_name

    contract, day = CONTRACT, partition_day(context)
    # Which days the window holds is read from the instance, not from the files that happen to
    # exist: a day another run or a backfill is still writing is waited for, never trained without.
    with carried_out(context, "features"):
        window = window_status(
            context,
            "validated_transactions",
            day,
            SPAN_DAYS,
            gated_assets=("raw_transactions", "validated_transactions"),
            loaded_days=days_present(validated_transactions[contract.event_time]),
        )
        _wait_for_pending_days(context, window)
        if window.states[day] == DayState.MISSING:
            # An asset backfill of a date range also targets the features of the window's days
            # after it (Dagster follows the partition mapping downstream): a model for a day
            # without data of its own is no model of that day.
            raise dg.Failure(
                description=(
                    f"{step_name(context)}: validated_transactions[{context.partition_key}] is not "
                    f"materialized: the day's own data is needed ({window.summary()})"
                ),
                allow_retries=False,
            )
        if not window.complete:
            context.log.warning(f"Training on a partial window: {window.summary()}")
        # Days of the window whose blocking gates failed stay stored (the checked asset is kept)
        # but must not feed a model.
        times = validated_transactions[contract.event_time]
        excluded = {
            each: window.reasons[each].split(", ")
            for each in days_present(times)
            if window.states.get(each) == DayState.FAILED_GATES
        }
        if excluded:
            context.log.warning(
                f"Left out of the window, their gates failed: {_by_day_text(excluded)}"
            )
            validated_transactions = validated_transactions[~on_any_day(times, list(excluded))]
        if validated_transactions.empty:
            raise DatasetError(
                f"every day of the window failed its gates: {_by_day_text(excluded)}"
            )
        outcomes, outcome_window = _known_outcomes(context, contract, label_inputs.get("outcomes"))
        table = build_features(
            validated_transactions,
            contract,
            validation_fraction=config.validation_fraction,
            test_fraction=config.test_fraction,
            # With labels from outcomes (no label delay then): those known by the day's end.
            labels_known_before=day + dt.timedelta(days=1 - contract.label_delay_days),
            outcomes=outcomes,
        )
    categorical, numeric = model_columns(table, contract)
    by_split = table.groupby(SPLIT_COLUMN, observed=True)[LABEL_COLUMN].agg(["size", "mean"])
    found_days = days_present(table[contract.event_time])
    waiting = int((table[SPLIT_COLUMN] == WAITING).sum())
    labels = (
        {
            "labels": "outcomes known by the end of the day",
            # Rows whose label is an outcome known by then; the others wait for theirs.
            "rows_labelled_from_outcomes": len(table) - waiting,
            # The arrival days whose outcomes were read.
            "outcome_window": outcome_window,
        }
        if outcomes is not None
        else {}
    )
    return dg.Output(
        table,
        metadata={
            "dagster/row_count": len(table),
            "window": window.summary(),
            "window_complete": window.complete,
            "window_days_configured": WINDOW_DAYS,
            "label_delay_days": contract.label_delay_days,
            # Scored, but not learned from or judged on: labels not known yet.
            "rows_waiting_for_labels": waiting,
            **labels,
            "window_days_found": dg.MetadataValue.json([each.isoformat() for each in found_days]),
            "window_days_excluded": dg.MetadataValue.json(_by_day_text(excluded)),
            "window_days_absent": dg.MetadataValue.json(
                _by_day_text(
                    {
                        each: state.value
                        + (f" ({window.reasons[each]})" if each in window.reasons else "")
                        for each, state in window.states.items()
                        if state != DayState.INCLUDED
                    }
                )
            ),
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


def _known_outcomes(
    context: dg.AssetExecutionContext, contract, outcomes: pd.DataFrame | None
) -> tuple[pd.DataFrame | None, str]:
    """The outcomes the labels come from (None: the labels are the events' target) and which of
    the window's arrival days they were read from. Waits, as for the validated days, while an
    arrival day is still being written; one not materialized is only warned about: the rows it
    would label wait, no label is taken from elsewhere."""
    from mlplatform.assets.upstream_window import window_status
    from mlplatform.core.days import days_present
    from mlplatform.core.outcomes import KNOWN_AT

    if not contract.labels_from_outcomes:
        return None, ""
    # An input whenever the contract takes its labels from outcomes: both fixed at load.
    assert outcomes is not None
    timezone = SETTINGS.partitions.timezone
    arrived = (
        days_present(pd.to_datetime(outcomes[KNOWN_AT], utc=True).dt.tz_convert(timezone))
        if len(outcomes)
        else []
    )
    window = window_status(
        context, "outcomes", partition_day(context), SPAN_DAYS, gated_assets=(), loaded_days=arrived
    )
    _wait_for_pending_days(context, window)
    if not window.complete:
        context.log.warning(f"Outcomes of part of the window only: {window.summary()}")
    return outcomes, window.summary()


def _wait_for_pending_days(context: dg.AssetExecutionContext, window) -> None:
    """Ask Dagster to run the step again later while a day of the window is still to come; after
    `pending_days_wait_seconds`, fail (no retry) rather than train on part of the window."""
    import math

    from mlplatform.stages import step_name

    if not window.pending:
        return
    settings = SETTINGS.features
    polls = math.ceil(settings.pending_days_wait_seconds / settings.pending_days_poll_seconds)
    waiting = _by_day_text({day: window.reasons[day] for day in window.pending})
    if context.retry_number < polls:
        context.log.info(
            f"Waiting {settings.pending_days_poll_seconds:g} s for days of the window still to "
            f"come: {waiting} ({window.summary()})"
        )
        raise dg.RetryRequested(
            max_retries=polls, seconds_to_wait=settings.pending_days_poll_seconds
        )
    raise dg.Failure(
        description=(
            f"{step_name(context)}: days of the window were still to come after waiting "
            f"{settings.pending_days_wait_seconds:g} s (features.pending_days_wait_seconds): "
            f"{waiting}"
        ),
        metadata={"window": window.summary()},
        allow_retries=False,
    )


def _by_day_text(by_day: dict[dt.date, Any]) -> dict[str, Any]:
    """Days as YYYY-MM-DD keys, for JSON metadata and messages a person reads."""
    return {day.isoformat(): value for day, value in by_day.items()}
