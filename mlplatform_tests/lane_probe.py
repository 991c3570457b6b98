"""A small champion lane for the scoring-order test: a model step that fails once and waits for its
retry (or fails for good), its registration, and a scoring step beside them, tagged as the
platform's stages tag theirs. Each step writes when it finished; scoring, when it went ahead."""

import json
import time
from pathlib import Path

import dagster as dg

from mlplatform.automation.execution import job_executor
from mlplatform.stages.definition import CHAMPION_LANE, CHAMPION_LANE_TAG, STAGE_TAG
from mlplatform.stages.lane import settled_model_steps

# Long enough that, without the wait, scoring runs well inside the model step's retry delay.
MODEL_RETRY_SECONDS = 8


class ProbeConfig(dg.Config):
    folder: str
    model_fails_for_good: bool = False


def lane(stage: str) -> dict[str, str]:
    tags = {CHAMPION_LANE_TAG: CHAMPION_LANE, STAGE_TAG: stage}
    return {**tags, "dagster/priority": "-1"} if stage == "deployment" else tags


def stamp(folder: str, name: str, **extra: object) -> None:
    (Path(folder) / f"{name}.json").write_text(json.dumps({"at": time.time(), **extra}))


@dg.asset
def day_rows() -> int:
    return 1


@dg.asset(op_tags=lane("training"))
def model(context: dg.AssetExecutionContext, config: ProbeConfig, day_rows: int) -> int:
    if config.model_fails_for_good:
        raise dg.Failure("the model cannot be trained", allow_retries=False)
    if context.retry_number == 0:
        raise dg.RetryRequested(max_retries=1, seconds_to_wait=MODEL_RETRY_SECONDS)
    stamp(config.folder, "model")
    return day_rows


@dg.asset(op_tags=lane("registration"))
def registration(config: ProbeConfig, model: int) -> int:
    stamp(config.folder, "registration")
    return model


@dg.asset(op_tags=lane("deployment"))
def scores(context: dg.AssetExecutionContext, config: ProbeConfig, day_rows: int) -> int:
    reason = settled_model_steps(context)
    stamp(config.folder, "scores", reason=reason)
    return day_rows


lane_probe = dg.define_asset_job(
    "lane_probe",
    selection=["day_rows", "model", "registration", "scores"],
    executor_def=job_executor(),
)
lane_probe_in_process = dg.define_asset_job(
    "lane_probe_in_process",
    selection=["day_rows", "model", "registration", "scores"],
    executor_def=dg.in_process_executor,
)
defs = dg.Definitions(
    assets=[day_rows, model, registration, scores], jobs=[lane_probe, lane_probe_in_process]
)


def lane_probe_job() -> dg.JobDefinition:
    return defs.resolve_job_def("lane_probe")


def lane_probe_in_process_job() -> dg.JobDefinition:
    return defs.resolve_job_def("lane_probe_in_process")
