"""Typed loading of orchestration.yaml and error_handling.yaml (a bad key or value names itself)."""

from __future__ import annotations

from typing import Literal

from pydantic import Field, field_validator

from mlplatform.config.loading import StrictModel, load_layered

Stage = Literal[
    "ingestion", "validation", "features", "training", "registration", "deployment", "checks"
]  # fmt: skip


class ScheduleSettings(StrictModel):
    cron: str
    timezone: str
    running_by_default: bool

    @field_validator("cron")
    @classmethod
    def _valid_cron(cls, value: str) -> str:
        from dagster._utils.schedules import is_valid_cron_string

        if not is_valid_cron_string(value):
            raise ValueError(f"'{value}' is not a valid cron expression")
        return value


class RetrySettings(StrictModel):
    max_retries: int = Field(ge=0, le=20)
    delay_seconds: float = Field(ge=0)
    backoff: Literal["exponential", "linear"]
    jitter: Literal["plus_minus", "full", "none"]


class SensorSettings(StrictModel):
    new_data_interval_seconds: int = Field(ge=5)
    landing_settle_seconds: float = Field(ge=0)
    drift_interval_seconds: int = Field(ge=5)
    alert_interval_seconds: int = Field(ge=5)


class AlertSettings(StrictModel):
    webhook_url_env: str
    ui_url_env: str
    default_ui_url: str


# Kubernetes quantities: "500m" or "2" CPUs, "512Mi" or "6Gi" of memory.
_CPU = r"^\d+(\.\d+)?m?$"
_MEMORY = r"^\d+(\.\d+)?(Ki|Mi|Gi|Ti)?$"


class StepResources(StrictModel):
    """What one step of a stage needs (requests) and may use at most (limits)."""

    cpu: str = Field(pattern=_CPU)
    memory: str = Field(pattern=_MEMORY)
    cpu_limit: str = Field(pattern=_CPU)
    memory_limit: str = Field(pattern=_MEMORY)


class StepContainerSettings(StrictModel):
    memory_limit: str = Field(pattern=_MEMORY)
    cpus: float = Field(gt=0)


class MultiprocessSettings(StrictModel):
    start_method: Literal["spawn", "forkserver"]
    preload_modules: list[str] = Field(default_factory=list)
    max_concurrent: int = Field(ge=1)


class ExecutionSettings(StrictModel):
    executor: Literal["multiprocess", "in_process", "docker", "k8s"]
    multiprocess: MultiprocessSettings
    step_container: StepContainerSettings


class OrchestrationSettings(StrictModel):
    schedule: ScheduleSettings
    max_runtime_seconds: int = Field(gt=0)
    retries: dict[Stage, RetrySettings]
    step_time_limit_seconds: dict[Stage, int]
    step_resources: dict[Stage, StepResources]
    execution: ExecutionSettings
    sensors: SensorSettings
    alerts: AlertSettings

    @field_validator("retries", "step_time_limit_seconds", "step_resources")
    @classmethod
    def _every_stage(cls, value: dict) -> dict:
        missing = sorted(set(Stage.__args__) - set(value))  # type: ignore[attr-defined]
        if missing:
            raise ValueError(f"missing stages {missing}")
        return value


class ErrorRule(StrictModel):
    name: str
    severity: Literal["critical", "high", "low"]
    action: Literal["fail_fast", "retry", "warn"]
    classes: list[str] = Field(min_length=1)

    @field_validator("classes")
    @classmethod
    def _dotted(cls, names: list[str]) -> list[str]:
        for name in names:
            if "." not in name or not all(part.isidentifier() for part in name.split(".")):
                raise ValueError(f"'{name}' is not a dotted class name like builtins.OSError")
        return names


class ErrorHandlingSettings(StrictModel):
    rules: list[ErrorRule] = Field(min_length=1)


# The Docker deployment chooses step containers by environment (docker/.env.example).
ORCHESTRATION_ENV_OVERRIDES: dict[str, tuple[str, ...]] = {
    "MLPLATFORM_EXECUTOR": ("execution", "executor"),
    "MLPLATFORM_STEP_MEMORY_LIMIT": ("execution", "step_container", "memory_limit"),
    "MLPLATFORM_STEP_CPUS": ("execution", "step_container", "cpus"),
}


def load_orchestration(settings_dir=None, environ=None) -> OrchestrationSettings:
    return load_layered(
        "orchestration.yaml",
        OrchestrationSettings,
        settings_dir,
        environ,
        env_overrides=ORCHESTRATION_ENV_OVERRIDES,
    )


def load_error_handling(settings_dir=None, environ=None) -> ErrorHandlingSettings:
    return load_layered("error_handling.yaml", ErrorHandlingSettings, settings_dir, environ)
