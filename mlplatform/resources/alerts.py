"""Where alerts go: a Slack-compatible incoming webhook, as a resource."""

import os
from typing import Any
from urllib.parse import urlsplit

import dagster as dg
from pydantic import Field

from mlplatform.config.active import ORCHESTRATION
from mlplatform.resources.locked import Locked, resolved

_alerts = ORCHESTRATION.alerts


class AlertDeliveryError(Exception):
    """An alert that did not reach its webhook. The message names the webhook's host only: an
    incoming-webhook URL carries its token in the path, and this text ends up in sensor tick
    errors stored in the instance's database and shown in the UI."""


def webhook_host(url: str) -> str:
    """Where a webhook URL points, without its path, query or credentials."""
    try:
        parts = urlsplit(url)
        host = parts.hostname or "(no host)"
        port = f":{parts.port}" if parts.port else ""
    except ValueError:
        return "(an unparsable URL)"
    return f"{parts.scheme}://{host}{port}" if parts.scheme else host


class AlertWebhook(dg.ConfigurableResource):
    """Where alerts go: a Slack-compatible incoming webhook (the URL is a secret: from the
    environment only). Both addresses are `Locked` (resources/locked.py), never run config; an
    `EnvVar` is read where the alert is sent."""

    url: Locked[str] = Field("", description=f"Webhook URL, from ${_alerts.webhook_url_env}.")
    ui_url: Locked[str] = Field(
        _alerts.default_ui_url, description="Base URL of the Dagster UI for links."
    )
    timeout_seconds: float = 10.0

    def run_url(self, run_id: str) -> str:
        return f"{(resolved(self.ui_url) or _alerts.default_ui_url).rstrip('/')}/runs/{run_id}"

    def post(self, message: dict[str, Any], log: Any) -> bool:
        import requests

        url = resolved(self.url)
        if not url:
            log.warning(f"No alert webhook (${_alerts.webhook_url_env} unset): {message['text']}")
            return False
        where = webhook_host(url)
        # requests puts the full URL in its errors (and in the errors they wrap): only the type,
        # the HTTP status and the host go on, and the original is not chained (`from None`).
        try:
            response = requests.post(url, json=message, timeout=self.timeout_seconds)
        except requests.RequestException as error:
            raise AlertDeliveryError(
                f"alert not delivered to the webhook at {where}: {type(error).__name__}"
            ) from None
        if not response.ok:
            raise AlertDeliveryError(
                f"alert not delivered to the webhook at {where}: HTTP {response.status_code} "
                f"{response.reason}"
            )
        return True


def dagster_ui_url() -> str:
    """The Dagster UI's base URL people open, for links (alerts, MLflow runs): an EnvVar where
    the variable is set (resolved where the resource runs), the default otherwise."""
    ui_env = _alerts.ui_url_env
    return dg.EnvVar(ui_env) if os.environ.get(ui_env) else _alerts.default_ui_url  # type: ignore[return-value]


def alert_webhook_from_environment() -> AlertWebhook:
    """The resource as deployed: the URL is an EnvVar (resolved where the sensor runs, never shown
    or stored), and left empty when the variable is not set."""
    webhook_env = _alerts.webhook_url_env
    return AlertWebhook(
        url=dg.EnvVar(webhook_env) if os.environ.get(webhook_env) else "",  # type: ignore[arg-type]
        ui_url=dagster_ui_url(),
    )
