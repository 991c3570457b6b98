"""MLflow's accounts for the platform, made by the admin through the auth API (basic_auth.ini).

Runs after every start of the stack (the `mlflow-users` service) and may run again: a user that
exists gets the password from the environment (so rotating one is editing docker/.env), one that
does not is created. Neither is an admin.

  MLFLOW_PLATFORM_USERNAME  trains and registers: the experiment and the registered model the
                            platform's settings name are created here by this account (MLflow
                            gives a creator MANAGE on what it creates); on a registry made before
                            authentication it is granted MANAGE on every experiment and
                            registered model there.
  MLFLOW_READER_USERNAME    reads (default_permission = READ): the exporter, scoring elsewhere.

The admin's credentials come as MLFLOW_TRACKING_USERNAME / MLFLOW_TRACKING_PASSWORD. Passwords are
never printed; an error names the user and the HTTP status only.
"""

import os
import sys
from collections.abc import Iterator
from contextlib import contextmanager

from mlflow.exceptions import MlflowException, RestException
from mlflow.server.auth.client import AuthServiceClient
from mlflow.tracking import MlflowClient

MANAGE = "MANAGE"


def required(name: str) -> str:
    value = os.environ.get(name, "")
    if not value:
        raise SystemExit(f"create-users: {name} is not set")
    return value


def ensure_user(auth: AuthServiceClient, username: str, password: str) -> str:
    try:
        auth.get_user(username)
    except RestException as error:
        if error.error_code != "RESOURCE_DOES_NOT_EXIST":
            raise
        auth.create_user(username, password)
        return "created"
    auth.update_user_password(username, password)
    auth.update_user_admin(username, False)
    return "password set"


def grant_manage_everywhere(auth: AuthServiceClient, tracking: MlflowClient, username: str) -> int:
    """MANAGE on what exists already, so a registry made before authentication stays usable."""
    from mlflow.entities import ViewType

    resources = [
        ("experiment", experiment.experiment_id)
        for experiment in tracking.search_experiments(view_type=ViewType.ALL)
    ] + [("registered_model", model.name) for model in tracking.search_registered_models()]
    granted = 0
    for resource_type, resource_id in resources:
        try:
            auth.grant_user_permission(username, resource_type, resource_id, MANAGE)
            granted += 1
        except RestException as error:
            # Its own (it created it) or granted by an admin before: left as it is.
            if error.error_code != "RESOURCE_ALREADY_EXISTS":
                raise
    return granted


def platform_registry() -> tuple[str, str]:
    """The experiment and the registered model, as the platform's own settings name them (this
    service has the platform's settings variables)."""
    from mlplatform.config.active import CONTRACT, SETTINGS
    from mlplatform.definitions import build_resources

    mlflow = build_resources(SETTINGS)["mlflow"]
    return mlflow.experiment_name, mlflow.model_name_for(CONTRACT.name)


@contextmanager
def signed_in(username: str, password: str) -> Iterator[None]:
    """MLflow's client reads its account from the environment at every request."""
    saved = {k: os.environ[k] for k in ("MLFLOW_TRACKING_USERNAME", "MLFLOW_TRACKING_PASSWORD")}
    os.environ.update(MLFLOW_TRACKING_USERNAME=username, MLFLOW_TRACKING_PASSWORD=password)
    try:
        yield
    finally:
        os.environ.update(saved)


def create_as_platform(tracking_uri: str, experiment: str, model: str) -> None:
    """The registry's objects exist before the first training, created by the platform's account.
    A non-admin asking for a registered model that does not exist is answered 403, not 404, so
    the platform could not otherwise tell "no champion yet" from "not allowed".

    The experiment keeps the server's own artifact location, `mlflow-artifacts:/<experiment id>`:
    MLflow's authentication judges a proxied artifact upload by the experiment id its path starts
    with, and refuses to write under any other path (such as the platform's local default)."""
    tracking = MlflowClient(tracking_uri)
    found = tracking.get_experiment_by_name(experiment)
    if found is None:
        tracking.create_experiment(experiment)
        found = tracking.get_experiment_by_name(experiment)
    expected = f"mlflow-artifacts:/{found.experiment_id}"
    if found.artifact_location.rstrip("/") != expected:
        print(
            f"create-users: WARNING: experiment {experiment!r} keeps its artifacts at "
            f"{found.artifact_location}, not {expected}: with authentication the platform cannot "
            "upload there; name a new experiment (MLPLATFORM_MLFLOW_EXPERIMENT)",
            file=sys.stderr,
        )
    try:
        tracking.create_registered_model(model)
    except RestException as error:
        if error.error_code != "RESOURCE_ALREADY_EXISTS":
            raise


def main() -> int:
    tracking_uri = required("MLFLOW_TRACKING_URI")
    required("MLFLOW_TRACKING_USERNAME")
    required("MLFLOW_TRACKING_PASSWORD")
    platform = required("MLFLOW_PLATFORM_USERNAME")
    reader = required("MLFLOW_READER_USERNAME")
    auth = AuthServiceClient(tracking_uri)
    try:
        for username, password_variable in (
            (platform, "MLFLOW_PLATFORM_PASSWORD"),
            (reader, "MLFLOW_READER_PASSWORD"),
        ):
            outcome = ensure_user(auth, username, required(password_variable))
            print(f"create-users: {username}: {outcome}")
        granted = grant_manage_everywhere(auth, MlflowClient(tracking_uri), platform)
        print(f"create-users: {platform}: granted MANAGE on {granted} more experiments and models")
        experiment, model = platform_registry()
        with signed_in(platform, required("MLFLOW_PLATFORM_PASSWORD")):
            create_as_platform(tracking_uri, experiment, model)
        print(f"create-users: {platform}: experiment {experiment!r} and model {model!r} ready")
    except MlflowException as error:
        # The error text holds the server's answer, never a password.
        print(f"create-users: FAILED: {error.message}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
