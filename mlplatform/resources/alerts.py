"""Where alerts go: a Slack-compatible incoming webhook, as a resource."""

import os
from typing import Any

import dagster as dg
from pydantic import Field

from mlplatform.config.active import ORCHESTRATION

_alerts = ORCHESTRATION.alerts


class AlertWebhook(dg.ConfigurableResource):
    """Where alerts go: a Slack-compatible incoming webhook (the URL is a secret: from the
    environment only)."""

    url: str = Field("", description=f"Webhook URL, from ${_alerts.webhook_url_env}.")
    ui_url: str = Field(_alerts.default_ui_url, description="Base URL of the Dagster UI for links.")
    timeout_seconds: float = 10.0

    def run_url(self, run_id: str) -> str:
        return f"{self.ui_url.rstrip('/')}/runs/{run_id}"

    def post(self, message: dict[str, Any], log: Any) -> bool:
        import requests

        if not self.url:
            log.warning(f"No alert webhook (${_alerts.webhook_url_env} unset): {message['text']}")
            return False
        response = requests.post(self.url, json=message, timeout=self.timeout_seconds)
        response.raise_for_status()
        return True


def alert_webhook_from_environment() -> AlertWebhook:
    """The resource as deployed: the URL is an EnvVar (resolved where the sensor runs, never shown
    or stored), and left empty when the variable is not set."""
    webhook_env, ui_env = _alerts.webhook_url_env, _alerts.ui_url_env
    return AlertWebhook(
        url=dg.EnvVar(webhook_env) if os.environ.get(webhook_env) else "",  # type: ignore[arg-type]
        ui_url=dg.EnvVar(ui_env) if os.environ.get(ui_env) else _alerts.default_ui_url,  # type: ignore[arg-type]
    )
