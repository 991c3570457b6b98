"""Typed loading of orchestration.yaml and error_handling.yaml (a bad key or value names itself)."""

from __future__ import annotations

import builtins
import errno
import sys
from collections.abc import Iterator
from typing import Annotated, Literal

from pydantic import AfterValidator, Field, field_validator

from mlplatform.config.loading import StrictModel, TimeZoneName, load_layered

Stage = Literal[
    "ingestion", "validation", "features", "training", "registration", "deployment", "checks",
    "monitoring",
]  # fmt: skip


class ScheduleSettings(StrictModel):
    cron: str
    timezone: TimeZoneName
    running_by_default: bool

    @field_validator("cron")
    @classmethod
    def _valid_cron(cls, value: str) -> str:
        # Dagster's schedule definition judges the expression: the one built from this setting
        # would refuse it at import, with no word of the setting.
        import dagster as dg

        try:
            dg.ScheduleDefinition(name="cron_setting", cron_schedule=value, job_name="cron_setting")
        except dg.DagsterInvalidDefinitionError:
            raise ValueError(
                f"'{value}' is not a valid cron expression (five fields: minute hour day-of-month "
                "month day-of-week)"
            ) from None
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
    retry_launch_grace_seconds: float = Field(gt=0)
    incident_quiet_seconds: float = Field(gt=0)
    outcomes_interval_seconds: int = Field(ge=5)
    performance_interval_seconds: int = Field(ge=5)


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
    # 0: no limit of the step's own (the run's max_runtime_seconds still applies).
    step_time_limit_seconds: dict[Stage, Annotated[int, Field(ge=0)]]
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


def _dotted_class_name(name: str) -> str:
    if "." not in name or not all(part.isidentifier() for part in name.split(".")):
        raise ValueError(f"'{name}' is not a dotted class name like builtins.OSError")
    module, _, attribute = name.rpartition(".")
    # Other modules are looked up only when one is loaded (a rule costs no import); builtins
    # always is, so a misspelt built-in class would silently match nothing.
    if module == "builtins" and not isinstance(getattr(builtins, attribute, None), type):
        raise ValueError(f"'{name}': builtins has no class {attribute}")
    return name


def _errno_name(name: str) -> str:
    if not name.startswith("E") or not isinstance(getattr(errno, name, None), int):
        raise ValueError(
            f"'{name}' is not an errno name (such as ENOSPC; see Python's errno module)"
        )
    return name


def _error_code_name(name: str) -> str:
    # MLflow's names (mlflow.protos.databricks_pb2.ErrorCode) are not imported to check them: that
    # costs seconds at every load. A test checks the packaged ones against MLflow's list.
    if not name.isupper() or not name.replace("_", "").isalpha():
        raise ValueError(
            f"'{name}' is not an MLflow error code name (such as TEMPORARILY_UNAVAILABLE)"
        )
    return name


DottedClassName = Annotated[str, AfterValidator(_dotted_class_name)]
ErrnoName = Annotated[str, AfterValidator(_errno_name)]
ErrorCodeName = Annotated[str, AfterValidator(_error_code_name)]
HttpStatus = Annotated[int, Field(ge=100, le=599)]


class ErrorRule(StrictModel):
    """A class of errors by cause, and what a step does with it. An error matches when it is an
    instance of one of `classes` and meets every condition given; a condition left out (empty)
    does not narrow the rule."""

    name: str
    # fail_fast: Failure(allow_retries=False), one alert. retry: the stage's retry policy.
    action: Literal["fail_fast", "retry"]
    classes: list[DottedClassName] = Field(min_length=1)
    # OSError and its subclasses: the error's errno is one of these.
    errnos: list[ErrnoName] = Field(default_factory=list)
    # MLflow's MlflowException: its error_code is one of these.
    error_codes: list[ErrorCodeName] = Field(default_factory=list)
    # HTTP errors (requests, aiohttp, urllib): the response's status is one of these.
    http_statuses: list[HttpStatus] = Field(default_factory=list)
    # A wrapper error (raised from, or while handling, another): some error in its chain is an
    # instance of one of these.
    caused_by: list[DottedClassName] = Field(default_factory=list)

    @property
    def severity(self) -> Literal["critical", "high"]:
        """As alerts and step metadata show it: what fails fast is critical."""
        return "critical" if self.action == "fail_fast" else "high"

    @property
    def errno_values(self) -> frozenset[int]:
        return frozenset(getattr(errno, name) for name in self.errnos)

    def matches(self, error: BaseException) -> bool:
        if not _is_instance(error, self.classes):
            return False
        if self.errnos and getattr(error, "errno", None) not in self.errno_values:
            return False
        if self.error_codes and getattr(error, "error_code", None) not in self.error_codes:
            return False
        if self.http_statuses and _http_status(error) not in self.http_statuses:
            return False
        return not self.caused_by or any(
            _is_instance(link, self.caused_by) for link in _chain(error)
        )


class ErrorHandlingSettings(StrictModel):
    rules: list[ErrorRule] = Field(min_length=1)

    def rule_for(self, error: BaseException) -> ErrorRule | None:
        """The first rule that matches `error`; None when none does (the error then fails
        fast)."""
        return next((rule for rule in self.rules if rule.matches(error)), None)

    def is_retried(self, error: BaseException) -> bool:
        """Whether a retry policy gets `error`: only when a rule says it is transient."""
        rule = self.rule_for(error)
        return rule is not None and rule.action == "retry"


def _loaded_class(dotted: str) -> type | None:
    """The class named `dotted`, if its module is already imported: an error cannot be of a class
    whose module was never loaded, and the policy then costs no import."""
    module_name, _, class_name = dotted.rpartition(".")
    module = sys.modules.get(module_name)
    cls = getattr(module, class_name, None) if module is not None else None
    return cls if isinstance(cls, type) else None


def _is_instance(error: BaseException, names: list[str]) -> bool:
    return any(cls is not None and isinstance(error, cls) for cls in map(_loaded_class, names))


def _chain(error: BaseException) -> Iterator[BaseException]:
    """The errors `error` was raised from or while handling, nearest first."""
    seen = {id(error)}
    link = error.__cause__ or (None if error.__suppress_context__ else error.__context__)
    while link is not None and id(link) not in seen:
        seen.add(id(link))
        yield link
        link = link.__cause__ or (None if link.__suppress_context__ else link.__context__)


def _http_status(error: BaseException) -> int | None:
    """The response status of an HTTP error: requests (`response.status_code`), aiohttp
    (`status`), urllib (`code`)."""
    response = getattr(error, "response", None)
    for status in (
        getattr(response, "status_code", None),
        getattr(error, "status", None),
        getattr(error, "code", None),
    ):
        if isinstance(status, int):
            return status
    return None


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
