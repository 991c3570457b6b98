"""Scoring after the run's own model is settled.

The champion lane (`mlplatform.stages.definition`) lets one of its steps run at a time, scoring
last among those ready. That is not enough when a model step fails and waits for its retry: it is
not running then, so the lane is free and scoring went ahead with the previous champion, minutes
before the same run registered a new one. A scoring step therefore looks at the run's model steps
(the lane's steps that are not scoring: training, its gates, registration) and, while any of them
can still run, steps aside with `dg.RetryRequested`: that frees its process and the lane, and the
executor comes back to it after `SETTLE_POLL_SECONDS`. Waiting inside the step instead would hold
a process slot that a model step's retry may need.

Once they are settled, scoring goes on; if one of them finally failed, the reason is returned to
be recorded with the scores. The run's time limit (`max_runtime_seconds`) bounds the wait.
"""

from collections.abc import Mapping, Set
from typing import Literal

import dagster as dg

from mlplatform.config.active import ORCHESTRATION
from mlplatform.instance_queries import last_step_events, planned_steps
from mlplatform.stages.definition import CHAMPION_LANE, CHAMPION_LANE_TAG, STAGE_TAG

SETTLE_POLL_SECONDS = 10
# Steps that only score: everything else in the lane is what they wait for.
SCORING_STAGE = "deployment"

StepState = Literal["succeeded", "failed", "skipped", "not executed", "pending"]

_LAST_EVENT_STATE: dict[str, StepState] = {
    dg.DagsterEventType.STEP_SUCCESS.value: "succeeded",
    dg.DagsterEventType.STEP_FAILURE.value: "failed",
    dg.DagsterEventType.STEP_SKIPPED.value: "skipped",
    # Running, or failed and waiting for its retry: it can still succeed.
    dg.DagsterEventType.STEP_START.value: "pending",
    dg.DagsterEventType.STEP_RESTARTED.value: "pending",
    dg.DagsterEventType.STEP_UP_FOR_RETRY.value: "pending",
}


def step_states(
    last_event: Mapping[str, str], upstream: Mapping[str, Set[str]]
) -> dict[str, StepState]:
    """Each planned step's state from its last step event (`last_event`, by step key) and its
    upstream steps in the same plan (`upstream`, every planned step a key).

    A step with no event yet is pending unless an upstream step failed or was not executed: Dagster
    then abandons it without an event of its own (it logs "Dependencies ... failed").
    """
    states: dict[str, StepState] = {}

    def state_of(key: str) -> StepState:
        if key not in states:
            if key in last_event:
                states[key] = _LAST_EVENT_STATE[last_event[key]]
            elif any(
                state_of(up) in ("failed", "not executed") for up in upstream[key] if up in upstream
            ):
                states[key] = "not executed"
            else:
                states[key] = "pending"
        return states[key]

    for key in upstream:
        state_of(key)
    return states


def model_step_keys(tags_by_step: Mapping[str, Mapping[str, object]]) -> list[str]:
    """The planned steps scoring waits for: the champion lane's steps that do not score."""
    return [
        key
        for key, tags in tags_by_step.items()
        if tags.get(CHAMPION_LANE_TAG) == CHAMPION_LANE and tags.get(STAGE_TAG) != SCORING_STAGE
    ]


def settled_model_steps(context: dg.AssetExecutionContext) -> str | None:
    """For a scoring step: `None` when every model step of this run succeeded (or the run has
    none), else why one did not, to record with the scores. Raises `dg.RetryRequested` while one
    of them can still run."""
    planned = planned_steps(context.instance, context.run)
    model_steps = model_step_keys({key: step.tags or {} for key, step in planned.items()})
    if not model_steps:
        return None
    last_event = {
        key: event
        for key, event in last_step_events(context.instance, context.run_id, _EVENT_TYPES).items()
        if key in planned
    }
    upstream = {
        key: {
            handle.step_key for step_input in step.inputs
            for handle in step_input.upstream_output_handles
        } & planned.keys()
        for key, step in planned.items()
    }  # fmt: skip
    states = step_states(last_event, upstream)
    pending = [key for key in model_steps if states[key] == "pending"]
    if pending:
        context.log.info(
            f"Scoring waits for this run's {', '.join(pending)} (running or waiting for a "
            f"retry): back in {SETTLE_POLL_SECONDS} s, so the day is scored by the champion its "
            "own registration leaves"
        )
        raise dg.RetryRequested(
            max_retries=ORCHESTRATION.max_runtime_seconds // SETTLE_POLL_SECONDS,
            seconds_to_wait=SETTLE_POLL_SECONDS,
        )
    unsuccessful = [f"{key} {states[key]}" for key in model_steps if states[key] != "succeeded"]
    if not unsuccessful:
        return None
    return f"this run's model steps did not all succeed ({', '.join(unsuccessful)})"


_EVENT_TYPES = [dg.DagsterEventType(value) for value in _LAST_EVENT_STATE]
