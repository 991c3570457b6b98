"""How a stage's step fails: the error policy by error class (error_handling.yaml) and a time
limit per step (orchestration.yaml). Retries themselves are the stage's retry policy."""

import contextlib
import signal
import sys
import threading
from collections.abc import Iterator
from typing import Any

import dagster as dg

from mlplatform.config.active import ERROR_HANDLING, ORCHESTRATION
from mlplatform.config.orchestration import ErrorHandlingSettings, ErrorRule, Stage


def _is_instance(error: BaseException, dotted: str) -> bool:
    """Whether `error` is an instance of the class named `dotted`. Only modules already imported
    are looked at: an error cannot be of a class whose module was never loaded, and the policy
    then costs no import."""
    module_name, _, class_name = dotted.rpartition(".")
    module = sys.modules.get(module_name)
    cls = getattr(module, class_name, None) if module is not None else None
    return isinstance(cls, type) and isinstance(error, cls)


def rule_for(
    error: BaseException, settings: ErrorHandlingSettings = ERROR_HANDLING
) -> ErrorRule | None:
    for rule in settings.rules:
        if any(_is_instance(error, name) for name in rule.classes):
            return rule
    return None


class StepTimeLimitExceeded(TimeoutError):
    """A step ran past its own time limit."""


@contextlib.contextmanager
def _time_limit(seconds: float, where: str) -> Iterator[None]:
    # SIGALRM only reaches the main thread; elsewhere the run's max_runtime still applies.
    if seconds <= 0 or threading.current_thread() is not threading.main_thread():
        yield
        return

    def expire(signum: int, frame: Any) -> None:
        raise StepTimeLimitExceeded(f"{where}: exceeded its time limit of {seconds:g} s")

    previous = signal.signal(signal.SIGALRM, expire)
    signal.setitimer(signal.ITIMER_REAL, seconds)
    try:
        yield
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, previous)


def step_name(context: Any) -> str:
    """The step's op and partition, as errors name it: `trained_model[2026-03-02]`."""
    name = context.op_def.name
    return f"{name}[{context.partition_key}]" if context.has_partition_key else name


@contextlib.contextmanager
def carried_out(
    context: Any, stage: Stage, *, source: str | None = None, time_limit: float | None = None
) -> Iterator[None]:
    """Run a step's work under the stage's time limit and the error policy:
    critical errors fail fast without retry, transient ones go to the stage's retry policy.
    Errors name the step and partition (and `source`, where the data came from)."""
    where = step_name(context) + (f" from {source}" if source else "")
    limit = ORCHESTRATION.step_time_limit_seconds[stage] if time_limit is None else time_limit
    try:
        with _time_limit(limit, where):
            yield
    except dg.Failure:
        raise
    except StepTimeLimitExceeded as error:
        raise dg.Failure(
            description=str(error),
            metadata={"error_class": "StepTimeLimitExceeded", "severity": "critical"},
            allow_retries=False,
        ) from error
    except Exception as error:
        rule = rule_for(error)
        if rule is not None and rule.action == "fail_fast":
            raise dg.Failure(
                description=f"{where}: {error}",
                metadata={
                    "error_class": type(error).__name__,
                    "severity": rule.severity,
                    "policy": rule.name,
                },
                allow_retries=False,
            ) from error
        if rule is not None and rule.action == "retry":
            context.log.warning(
                f"{where}: {type(error).__name__}: {error} ({rule.name}; the retry policy applies)"
            )
        raise


@contextlib.contextmanager
def optional_work(context: Any, what: str) -> Iterator[None]:
    """Work a step can do without (previews, extra metadata): its errors are logged as warnings
    and the step goes on, except critical ones (bad data or settings), which still fail it."""
    try:
        yield
    except Exception as error:
        rule = rule_for(error)
        if rule is not None and rule.action == "fail_fast":
            raise
        context.log.warning(
            f"{what} skipped: {type(error).__name__}: {error} ({rule.name if rule else 'no rule'})"
        )
