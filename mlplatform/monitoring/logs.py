"""Structured logs: Dagster's log stream as one JSON object per line, carrying the run id, job,
step, asset and partition, for a log collector (Loki, Elasticsearch, CloudWatch) to index.

Two ways to switch it on (a Dagster logger only runs when the run config names it, so the
code location alone cannot make it every run's default):

- for every run of an instance, in its `dagster.yaml` (what production wants):

      python_logs:
        python_log_level: INFO            # a higher level would drop the assets' own messages
        dagster_handler_config:
          handlers:
            json: {class: logging.StreamHandler, stream: ext://sys.stderr, formatter: json}
          formatters:
            json: {(): mlplatform.monitoring.logs.StructuredJsonFormatter}

- for one run, in the Launchpad's run config: `loggers: {json: {}}` (the `json` logger below,
  registered in the Definitions).
"""

import datetime as dt
import json
import logging
import sys
from collections.abc import Callable, Mapping
from typing import Any

import dagster as dg

from mlplatform.instance_queries import PARTITION_TAG

AssetsOfStep = Callable[[str | None, str], list[str]]


def structured_fields(
    record: logging.LogRecord, asset_of_step: AssetsOfStep | None = None
) -> dict[str, Any]:
    """The JSON object for one Dagster log record.

    `asset_of_step(job, step_key) -> [asset, ...]` names the assets a step materializes or checks;
    an event about one asset (a materialization, a check evaluation) names that asset instead.
    """
    meta: Mapping[str, Any] = getattr(record, "dagster_meta", None) or {}
    event = meta.get("dagster_event")
    step_key = meta.get("step_key")
    assets: list[str] = []
    event_asset = _event_asset(event)
    if event_asset:
        assets = [event_asset]
    elif step_key and asset_of_step is not None:
        assets = asset_of_step(meta.get("job_name"), step_key)
    tags = meta.get("job_tags") or {}
    return {
        "timestamp": dt.datetime.fromtimestamp(record.created, tz=dt.UTC).isoformat(),
        "level": record.levelname,
        "logger": record.name,
        "message": meta.get("orig_message", record.getMessage()),
        "run_id": meta.get("run_id"),
        "job": meta.get("job_name"),
        "step_key": step_key,
        "asset": assets[0] if len(assets) == 1 else None,
        "assets": assets,
        "partition": _event_partition(event) or tags.get(PARTITION_TAG),
        "event_type": getattr(event, "event_type_value", None),
    }


def _event_asset(event: Any) -> str | None:
    if event is None:
        return None
    try:
        key = event.asset_key
    except Exception:  # events without an asset raise on some accessors: no asset then
        key = None
    if key is None:
        data = getattr(event, "event_specific_data", None)
        key = getattr(data, "asset_key", None)
    return key.to_user_string() if key is not None else None


def _event_partition(event: Any) -> str | None:
    if event is None:
        return None
    try:
        return event.partition
    except Exception:
        return None


def assets_of_step_in_job(job_def: Any, step_key: str) -> list[str]:
    """The asset keys (as strings) a step of `job_def` materializes or checks: those of the assets
    definition behind the step's outermost node (a step's key is its node's path, `asset` or
    `graph_asset.op`)."""
    outer = step_key.split(".", 1)[0]
    keys = next(
        (
            data.assets_def.asset_and_check_keys
            for data in job_def.asset_layer.data
            if data.node_handle.name == outer and data.node_handle.parent is None
        ),
        (),
    )
    return sorted({getattr(key, "asset_key", key).to_user_string() for key in keys})


class _StepAssets:
    """Step -> assets, from one job definition or, without one, from the platform's Definitions
    when this process has loaded them (a run worker has; the formatter never imports them)."""

    def __init__(self, job_def: Any = None) -> None:
        self.job_def = job_def
        self.cache: dict[tuple[str | None, str], list[str]] = {}

    def __call__(self, job_name: str | None, step_key: str) -> list[str]:
        key = (job_name, step_key)
        if key not in self.cache:
            try:
                job_def = self.job_def
                if job_def is None:
                    definitions = sys.modules.get("mlplatform.definitions")
                    if definitions is None or job_name is None:
                        return []
                    job_def = definitions.defs.resolve_job_def(job_name)
                self.cache[key] = assets_of_step_in_job(job_def, step_key)
            except Exception:  # not an asset step (an op job, an unknown job): no asset to name
                self.cache[key] = []
        return self.cache[key]


class StructuredJsonFormatter(logging.Formatter):
    """One JSON object per Dagster log record (usable from dagster.yaml's python_logs)."""

    def __init__(self, asset_of_step: AssetsOfStep | None = None) -> None:
        super().__init__()
        self.asset_of_step = asset_of_step or _StepAssets()

    def format(self, record: logging.LogRecord) -> str:
        fields = structured_fields(record, self.asset_of_step)
        if record.exc_info:
            fields["error"] = self.formatException(record.exc_info)
        return json.dumps(fields, default=str)


@dg.logger(
    config_schema={
        "log_level": dg.Field(str, is_required=False, default_value="DEBUG"),
        "name": dg.Field(str, is_required=False, default_value="dagster"),
    },
    description="Dagster's log stream as JSON lines on stderr, with run id, asset and partition.",
)
def structured_json_logger(init_context: dg.InitLoggerContext) -> logging.Logger:
    config = init_context.logger_config
    logger = logging.Logger(config["name"], level=config["log_level"].upper())
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(StructuredJsonFormatter(_StepAssets(init_context.job_def)))
    logger.addHandler(handler)
    return logger


def platform_loggers() -> dict[str, dg.LoggerDefinition]:
    """Loggers a run may choose in its run config (`loggers: {json: {}}`); without that choice
    Dagster keeps its console logger."""
    return {"json": structured_json_logger}
