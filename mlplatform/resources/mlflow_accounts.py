"""MLflow accounts: the process's own account (it trains, registers and moves aliases) and the
read-only reader account a step that only reads the registry runs as; the reader's fields as the
deployment gives them, and a refusal by the server named without the password."""

import contextlib
import os
from collections.abc import Iterator
from typing import Any

import dagster as dg

from mlplatform.resources.locked import resolved

# MLflow's client reads the account of every request from these (mlflow.utils.credentials).
ACCOUNT_USERNAME_ENV = "MLFLOW_TRACKING_USERNAME"
ACCOUNT_PASSWORD_ENV = "MLFLOW_TRACKING_PASSWORD"
# The read-only account's, as the deployment provides them (docker/.env).
READER_USERNAME_ENV = "MLFLOW_READER_USERNAME"
READER_PASSWORD_ENV = "MLFLOW_READER_PASSWORD"


@contextlib.contextmanager
def as_reader(
    tracking_uri: str,
    reader_username: str | dg.EnvVar | None,
    reader_password: str | dg.EnvVar | None,
) -> Iterator[None]:
    """MLflow's requests inside the block go as the read-only reader account, when one is
    configured (nothing changes otherwise): MLflow's client takes the account from the
    environment at each request, so it is set for the block and the previous one put back
    after it, also when the block raises (the in-process executor runs later steps, which
    write, in this same process). The block must not write to MLflow. A request the server
    refuses fails the step without retry, naming the account, never its password."""
    # Locked fields: an EnvVar is read here, where the step runs.
    username, password = resolved(reader_username), resolved(reader_password)
    if not username and not password:
        yield
        return
    if not (username and password):
        missing = "reader_password" if username else "reader_username"
        raise dg.Failure(
            description=(
                f"MlflowResource.{missing} is not set while the other half of the reader "
                f"account is ({READER_USERNAME_ENV} / {READER_PASSWORD_ENV}): set both, or "
                "neither to use the process's own account"
            ),
            allow_retries=False,
        )
    saved = {name: os.environ.get(name) for name in (ACCOUNT_USERNAME_ENV, ACCOUNT_PASSWORD_ENV)}
    os.environ[ACCOUNT_USERNAME_ENV] = username
    os.environ[ACCOUNT_PASSWORD_ENV] = password
    try:
        yield
    except Exception as error:
        refused = refusal(error)
        if refused is None:
            raise
        raise dg.Failure(
            description=(
                f"MLflow at {tracking_uri} refused the reader account "
                f"'{username}' ({refused}): check {READER_USERNAME_ENV} and "
                f"{READER_PASSWORD_ENV} (docker/.env in the Docker deployment) against the "
                "account on the server, and that it may read the registered model"
            ),
            metadata={"mlflow_account": username, "refusal": refused},
            allow_retries=False,
        ) from error
    finally:
        for name, value in saved.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value


def reader_account_from_environment() -> dict[str, Any]:
    """The reader account's fields as the deployment gives them: EnvVars, resolved where a step
    runs and shown in the UI by name only, when the code location's environment names an
    account; none otherwise (local runs without authentication)."""
    if not (os.environ.get(READER_USERNAME_ENV) or os.environ.get(READER_PASSWORD_ENV)):
        return {}
    return {
        "reader_username": dg.EnvVar(READER_USERNAME_ENV),
        "reader_password": dg.EnvVar(READER_PASSWORD_ENV),
    }


def refusal(error: BaseException) -> str | None:
    """The HTTP status of an MLflow server's refusal of the account (401: wrong user or
    password; 403: not allowed), from the error or any error it was raised from (an artifact
    download fails with requests' HTTPError, wrapped by MLflow); None when it is no refusal."""
    seen: set[int] = set()
    current: BaseException | None = error
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        response = getattr(current, "response", None)
        status = getattr(response, "status_code", None) or {
            "UNAUTHENTICATED": 401, "PERMISSION_DENIED": 403,
        }.get(str(getattr(current, "error_code", "")))  # fmt: skip
        if status in (401, 403):
            meaning = (
                "wrong user or password"
                if status == 401
                # MLflow also answers 403, not 404, to a non-admin for a model that does not exist.
                else "not allowed to read it, or it does not exist"
            )
            return f"HTTP {status}: {meaning}"
        current = current.__cause__ or current.__context__
    return None
