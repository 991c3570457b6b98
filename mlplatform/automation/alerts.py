"""What the alert sensors post: Slack-compatible messages (`text` plus Block Kit `blocks`)."""

from typing import Any


def _section(text: str) -> dict[str, Any]:
    return {"type": "section", "text": {"type": "mrkdwn", "text": text}}


def failure_message(
    job: str,
    partition: str | None,
    failed_steps: list[str],
    error: str,
    run_url: str,
    incident: Any = None,
) -> dict[str, Any]:
    """A failed run; with `incident`, the incident it belongs to: how many failed runs of this
    cause and which days so far (later ones are counted, not posted, until the all-clear)."""
    where = f"{job} [{partition}]" if partition else job
    steps = ", ".join(failed_steps) or "(no step: the run itself failed)"
    text = f":red_circle: {where} failed at {steps}: {error}"
    blocks = [
        _section(f":red_circle: *{where} failed*"),
        _section(f"*Failed step:* `{steps}`\n*Error:* {error[:2500]}"),
    ]
    if incident is not None:
        days = ", ".join(incident.days) or "no day"
        scope = f"{incident.failures} failed run(s) of this cause so far, days: {days}"
        text = f"{text} ({scope})"
        blocks.append(
            _section(
                f"*Incident:* {scope}. Further failures of this cause are counted, not posted; "
                "one message follows when the days it failed succeed again."
            )
        )
    blocks.append(_section(f"<{run_url}|Open the run in Dagster> (runbook: docs/runbook.md)"))
    return {"text": text, "blocks": blocks}


def failure_cleared_message(
    incident: Any, job: str, partition: str | None, run_url: str
) -> dict[str, Any]:
    """The all-clear of a run-failure incident: the last day (or job) it failed succeeded."""
    where = f"{job} [{partition}]" if partition else job
    text = f":large_green_circle: cleared: {where} succeeded; {incident.describe()}"
    return {
        "text": text,
        "blocks": [_section(text), _section(f"<{run_url}|Open the run in Dagster>")],
    }


def success_message(
    job: str,
    partition: str | None,
    model_name: str | None,
    version: str | None,
    promoted: bool | None,
    metrics: dict[str, float],
    run_url: str,
) -> dict[str, Any]:
    where = f"{job} [{partition}]" if partition else job
    if model_name:
        outcome = "is the new champion" if promoted else "registered as challenger"
        model = f"{model_name} v{version} {outcome}"
    else:
        model = "no model registered in this run"
    shown = ", ".join(f"{k} {v:.4f}" for k, v in sorted(metrics.items()))
    return {
        "text": f":large_green_circle: {where} succeeded: {model}. {shown}",
        "blocks": [
            _section(f":large_green_circle: *{where} succeeded*"),
            _section(f"*Model:* {model}\n*Test metrics:* {shown or 'n/a'}"),
            _section(f"<{run_url}|Open the run in Dagster>"),
        ],
    }


def decay_message(
    incident: Any, summary: str, retraining_day: str | None, remedy: str
) -> dict[str, Any]:
    """One message per incident of live performance, however many days show it. `remedy`:
    retrain (a retraining on `retraining_day` was asked for) or rollback (a person's call)."""
    if remedy == "rollback":
        action = "run the `rollback` job to give `champion` back to the version it replaced"
    elif retraining_day:
        action = f"retraining on the newest data ({retraining_day}) requested"
    else:
        action = "no validated day to retrain on"
    days = ", ".join(incident.days)
    text = f":chart_with_downwards_trend: {incident.cause} (days {days}): {summary}"
    return {
        "text": f"{text}; {action}",
        "blocks": [
            _section(f":chart_with_downwards_trend: *{incident.cause}*"),
            _section(f"*Days:* {days}\n*Evidence:* {summary[:2500]}"),
            _section(f"*Action:* {action} (runbook: docs/runbook.md)"),
        ],
    }


def decay_cleared_message(incident: Any, day: str, version: str) -> dict[str, Any]:
    """The all-clear of an incident of live performance."""
    text = f":large_green_circle: cleared on {day} (v{version} holds): {incident.describe()}"
    return {"text": text, "blocks": [_section(text)]}
