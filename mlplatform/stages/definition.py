"""A stage's Dagster definition in one place: partitions, group, owner, retry policy, step
resources and automation condition come from the stage's name and orchestration.yaml, so an asset
module declares only what is its own (kinds, description, inputs)."""

import datetime as dt
import warnings
from collections.abc import Callable
from typing import Any

import dagster as dg

from mlplatform.config.active import ORCHESTRATION, SETTINGS
from mlplatform.config.orchestration import Stage

# Dagster features every stage relies on knowingly, whose preview/beta notices each CLI call and
# step would otherwise print (about 20 lines). Filtered here, where stages are defined and before
# any asset or check module uses them, and by message, so a notice about any other feature shows.
# - Partitioned asset checks (`AssetCheckSpec(partitions_def=...)`): each gate judges one day.
warnings.filterwarnings(
    "ignore",
    message=r"Specifying a partitions_def on an AssetCheckSpec",
    category=dg.PreviewWarning,
)
# - `TimeWindowPartitionMapping(allow_nonexistent_upstream_partitions=True)`: the feature window of
#   the partitions' first days reaches back before the first partition.
warnings.filterwarnings(
    "ignore", message=r"Parameter `allow_nonexistent_upstream_partitions`", category=dg.BetaWarning
)

# - `AssetSelection.all(include_sources=...)`: Dagster's own CLI calls it for `--select '*'`, the
#   README's way to materialize a day from the command line.
warnings.filterwarnings(
    "ignore", message=r"Parameter `include_sources` of function `AssetSelection.all`",
    category=dg.BetaWarning,
)  # fmt: skip

daily_partitions = dg.DailyPartitionsDefinition(
    start_date=SETTINGS.partitions.start_date.isoformat(),
    timezone=SETTINGS.partitions.timezone,
)

OWNER = "team:ml-platform"


def partition_day(context: Any) -> dt.date:
    """The day a partitioned step stands for. A partition key is Dagster's text (YYYY-MM-DD); it
    becomes a date here, once, and `core/` only ever sees dates."""
    return day_of_partition_key(context.partition_key)


def day_of_partition_key(key: str) -> dt.date:
    return dt.date.fromisoformat(key)


def partition_key_of(day: dt.date) -> str:
    """The partition key of `day`, for questions to the instance about partitions."""
    return day.isoformat()


# Declarative automation for everything downstream of raw data: run when an upstream partition
# updates, but only once its blocking checks have passed. Dagster's `eager` alone looks at upstream
# materializations, not at the checks of the run that made them, so it would carry bad data on.
AFTER_UPSTREAM_GATES = (
    dg.AutomationCondition.eager() & dg.AutomationCondition.all_deps_blocking_checks_passed()
).with_label("eager, after upstream gates")

# dagster-k8s reads this tag on a step (k8s_job_executor) or a run (K8sRunLauncher).
K8S_CONFIG_TAG = "dagster-k8s/config"

_BACKOFF = {"exponential": dg.Backoff.EXPONENTIAL, "linear": dg.Backoff.LINEAR}
_JITTER = {"plus_minus": dg.Jitter.PLUS_MINUS, "full": dg.Jitter.FULL, "none": None}


def retry_policy(stage: Stage) -> dg.RetryPolicy:
    settings = ORCHESTRATION.retries[stage]
    return dg.RetryPolicy(
        max_retries=settings.max_retries,
        delay=settings.delay_seconds,
        backoff=_BACKOFF[settings.backoff],
        jitter=_JITTER[settings.jitter],
    )


def step_tags(stage: Stage) -> dict[str, Any]:
    """Op tags declaring one stage's compute needs; on Kubernetes they size the step's pod."""
    needs = ORCHESTRATION.step_resources[stage]
    return {
        K8S_CONFIG_TAG: {
            "container_config": {
                "resources": {
                    "requests": {"cpu": needs.cpu, "memory": needs.memory},
                    "limits": {"cpu": needs.cpu_limit, "memory": needs.memory_limit},
                }
            }
        }
    }


# The champion lane: the steps that train a challenger, judge it, move `champion` and score with it.
# Within one run they go one at a time (the executors' tag limit, automation/execution.py) and,
# among those ready at once, scoring last (lowest priority), and scoring steps aside while a model
# step waits for its retry (`mlplatform.stages.lane`): a run of the whole graph scores with the
# champion its own registration left. Scoring does not depend on registration, so a challenger
# blocked by its gates stops registration only; the champion still scores the day.
CHAMPION_LANE_TAG = "mlplatform/lane"
CHAMPION_LANE = "champion"
# Each step's stage, so that scoring can tell the lane's model steps from the scoring steps
# (`mlplatform.stages.lane`).
STAGE_TAG = "mlplatform/stage"
CHAMPION_LANE_STAGES: tuple[Stage, ...] = ("training", "registration", "deployment")
_LOWEST_PRIORITY = {"deployment": "-1"}


def _step_arguments(stage: Stage, *, in_champion_lane: bool = False) -> dict[str, Any]:
    """What the step of every stage declares, for its asset and check decorators alike."""
    tags: dict[str, Any] = {**step_tags(stage), STAGE_TAG: stage}
    if in_champion_lane or stage in CHAMPION_LANE_STAGES:
        tags[CHAMPION_LANE_TAG] = CHAMPION_LANE
    if stage in _LOWEST_PRIORITY:
        tags["dagster/priority"] = _LOWEST_PRIORITY[stage]
    return {"retry_policy": retry_policy(stage), "op_tags": tags}


def stage_asset(
    stage: Stage,
    *,
    kinds: set[str],
    description: str,
    automated: bool = True,
    **asset_arguments: Any,
) -> Callable[..., dg.AssetsDefinition]:
    """`@dg.asset` for one daily-partitioned stage, in the stage's group. `automated`: runs once
    its upstream partition is materialized and passed its blocking gates (not for the stage that
    reads the source)."""
    return dg.asset(
        partitions_def=daily_partitions,
        group_name=stage,
        kinds=kinds,
        owners=[OWNER],
        description=description,
        automation_condition=AFTER_UPSTREAM_GATES if automated else None,
        **_step_arguments(stage),
        **asset_arguments,
    )


def stage_output(kinds: set[str], description: str, *, automated: bool = True) -> dg.AssetOut:
    """One asset of a stage that produces several (`stage_multi_asset`); `automated` as for
    `stage_asset`."""
    return dg.AssetOut(
        kinds=kinds,
        owners=[OWNER],
        automation_condition=AFTER_UPSTREAM_GATES if automated else None,
        description=description,
    )


def stage_multi_asset(
    stage: Stage, *, name: str, outs: dict[str, dg.AssetOut], **asset_arguments: Any
) -> Callable[..., dg.AssetsDefinition]:
    """`@dg.multi_asset` for a stage whose one step produces several assets."""
    return dg.multi_asset(
        name=name,
        partitions_def=daily_partitions,
        group_name=stage,
        outs=outs,
        **_step_arguments(stage),
        **asset_arguments,
    )


def stage_checks(
    name: str, *, in_champion_lane: bool = False, **check_arguments: Any
) -> Callable[..., dg.AssetChecksDefinition]:
    """`@dg.multi_asset_check` in the `checks` stage (its retry policy and step resources);
    `in_champion_lane` for the gates that decide whether a challenger may take champion."""
    return dg.multi_asset_check(
        name=name,
        **_step_arguments("checks", in_champion_lane=in_champion_lane),
        **check_arguments,
    )
