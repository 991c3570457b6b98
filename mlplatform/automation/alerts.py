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
