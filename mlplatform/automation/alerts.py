"""What the alert sensors post: Slack-compatible messages (`text` plus Block Kit `blocks`)."""

from typing import Any


def _section(text: str) -> dict[str, Any]:
    return {"type": "section", "text": {"type": "mrkdwn", "text": text}}


def failure_message(
    job: str, partition: str | None, failed_steps: list[str], error: str, run_url: str
) -> dict[str, Any]:
    where = f"{job} [{partition}]" if partition else job
    steps = ", ".join(failed_steps) or "(no step: the run itself failed)"
    text = f":red_circle: {where} failed at {steps}: {error}"
    return {
        "text": text,
        "blocks": [
            _section(f":red_circle: *{where} failed*"),
            _section(f"*Failed step:* `{steps}`\n*Error:* {error[:2500]}"),
            _section(
                f"<{run_url}|Open the run in Dagster> (runbook: README, *When an alert fires*)"
            ),
        ],
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
            _section(f"*Action:* {action} (runbook: README, *When an alert fires*)"),
        ],
    }


def decay_cleared_message(incident: Any, day: str, version: str) -> dict[str, Any]:
    """The all-clear of an incident of live performance."""
    text = f":large_green_circle: cleared on {day} (v{version} holds): {incident.describe()}"
    return {"text": text, "blocks": [_section(text)]}
