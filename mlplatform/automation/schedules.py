"""The daily training run: at the configured time, the day that has just ended."""

import datetime as dt

import dagster as dg

from mlplatform.automation.jobs import training_pipeline
from mlplatform.config.active import ORCHESTRATION

_schedule = ORCHESTRATION.schedule


@dg.schedule(
    name="daily_training",
    job=training_pipeline,
    cron_schedule=_schedule.cron,
    execution_timezone=_schedule.timezone,
    default_status=(
        dg.DefaultScheduleStatus.RUNNING
        if _schedule.running_by_default
        else dg.DefaultScheduleStatus.STOPPED
    ),
    description=(
        f"training_pipeline for the previous day, at `{_schedule.cron}` ({_schedule.timezone})."
    ),
)
def daily_training(context: dg.ScheduleEvaluationContext) -> dg.RunRequest:
    day = (context.scheduled_execution_time - dt.timedelta(days=1)).date().isoformat()
    return dg.RunRequest(run_key=f"daily_training:{day}", partition_key=day)
