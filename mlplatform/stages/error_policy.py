"""How a stage's step fails: the error policy by cause (error_handling.yaml) and a time limit per
step (orchestration.yaml). Retries themselves are the stage's retry policy.

Only errors a rule names as transient (network, a busy service, a full disk) reach the retry
policy; everything else, including an error no rule names, fails fast with one alert."""

import contextlib
import signal
import threading
import traceback
from collections.abc import Iterator
from typing import Any

import dagster as dg

from mlplatform.config.active import ERROR_HANDLING, ORCHESTRATION
from mlplatform.config.orchestration import ErrorHandlingSettings, ErrorRule, Stage
from mlplatform.resources.failures import failing_fast


def rule_for(
    error: BaseException, settings: ErrorHandlingSettings = ERROR_HANDLING
) -> ErrorRule | None:
    """The first rule that matches `error`; None when none does (the error then fails fast)."""
    return settings.rule_for(error)


def is_retried(error: BaseException, settings: ErrorHandlingSettings = ERROR_HANDLING) -> bool:
    """Whether the stage's retry policy gets `error`: only when a rule says it is transient."""
    return settings.is_retried(error)


class StepTimeLimitExceeded(BaseException):
    """A step ran past its own time limit.

    Not an Exception (like KeyboardInterrupt): it is raised asynchronously, from a signal, at
    whatever line the step was on, and code there that handles `Exception` or `OSError` would
    otherwise swallow it or turn it into its own error (a source reader made it a retryable
    "cannot read", so the ingestion limit was retried three times)."""


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
    """Run a step's work under the stage's time limit and the error policy: transient errors go
    to the stage's retry policy, every other error fails fast without retry. Errors name the
    step and partition (and `source`, where the data came from). A `dg.Failure` or
    `dg.RetryRequested` raised inside passes through unchanged."""
    where = step_name(context) + (f" from {source}" if source else "")
    limit = ORCHESTRATION.step_time_limit_seconds[stage] if time_limit is None else time_limit
    try:
        with _time_limit(limit, where):
            yield
    except (dg.Failure, dg.RetryRequested):
        raise
    except StepTimeLimitExceeded as error:
        raise dg.Failure(
            description=str(error),
            metadata={"error_class": "StepTimeLimitExceeded", "severity": "critical"},
            allow_retries=False,
        ) from error
    except Exception as error:
        rule = rule_for(error)
        if rule is None or rule.action != "retry":
            raise failing_fast(where, error, rule) from error
        context.log.warning(
            f"{where}: {type(error).__name__}: {error} ({rule.name}; the retry policy applies)"
        )
        raise


def _raised_at(error: BaseException) -> str:
    frames = traceback.extract_tb(error.__traceback__)
    return f" at {frames[-1].filename}:{frames[-1].lineno}" if frames else ""


@contextlib.contextmanager
def optional_work(context: Any, what: str) -> Iterator[None]:
    """Work a step can do without (previews, extra metadata): its errors are logged as warnings
    naming the error and where it was raised, and the step goes on. Errors a rule says fail fast
    (bad data or settings) still fail the step, without retry; a `dg.Failure`, a
    `dg.RetryRequested` and the step's time limit pass through."""
    try:
        yield
    except (dg.Failure, dg.RetryRequested):
        raise
    except Exception as error:
        rule = rule_for(error)
        if rule is not None and rule.action == "fail_fast":
            raise failing_fast(step_name(context), error, rule) from error
        why = rule.name if rule is not None else "no rule matches: possibly a programming error"
        context.log.warning(
            f"{what} skipped: {type(error).__name__}: {error}{_raised_at(error)} ({why})"
        )
