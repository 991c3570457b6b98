"""MLflow tracking through dagster-mlflow, typed, with what it leaves open closed.

dagster-mlflow's resource resumes one MLflow run per Dagster run (found by its `dagster_run_id`
tag) in every step. Its `end_mlflow_on_run_finished` hook ends that run, but only when the last step
of the job succeeds: assets materialized ad hoc (no hook) or runs stopped by a failed check would
leave it RUNNING. So this resource also ends the MLflow run when each step releases it, and
`failing_on_error` marks it FAILED when the step's MLflow work raises. A later step of the same
Dagster run simply resumes it.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from types import SimpleNamespace
from typing import TYPE_CHECKING, Any

import dagster as dg

# Public in spirit (the documented base of ConfigurableResource) but not re-exported at top level.
from dagster._config.pythonic_config import ConfigurableResourceFactory
from pydantic import Field

if TYPE_CHECKING:
    from dagster_mlflow.resources import MlFlow


def ensure_experiment(name: str, artifact_location: str) -> str:
    """The experiment's id, creating it with an explicit artifact location (MLflow would otherwise
    put artifacts under ./mlruns of whatever the working directory happens to be)."""
    import mlflow
    from mlflow.exceptions import MlflowException

    experiment = mlflow.get_experiment_by_name(name)
    if experiment is not None:
        return experiment.experiment_id
    try:
        return mlflow.create_experiment(name, artifact_location=artifact_location)
    except MlflowException:
        # Another process created it in the meantime.
        return mlflow.get_experiment_by_name(name).experiment_id  # type: ignore[union-attr]


class MlflowTracking(ConfigurableResourceFactory["MlFlow"]):
    """dagster-mlflow's `mlflow_tracking`: the MLflow API, with the active run being the one that
    belongs to this Dagster run."""

    experiment_name: str = Field(description="MLflow experiment for training runs.")
    tracking_uri: str = Field(description="MLflow tracking URI (sqlite:///..., http://...).")
    registry_uri: str | None = Field(
        None, description="Model registry URI; the tracking URI if unset."
    )
    artifact_location: str = Field(description="Where a new experiment stores its artifacts.")
    extra_tags: dict[str, str] = Field(
        default_factory=dict, description="Tags on every MLflow run."
    )

    def create_resource(self, context: dg.InitResourceContext) -> MlFlow:
        import mlflow
        from dagster_mlflow.resources import MlFlow

        mlflow.set_tracking_uri(self.tracking_uri)
        if self.registry_uri:
            mlflow.set_registry_uri(self.registry_uri)
        ensure_experiment(self.experiment_name, self.artifact_location)
        view = SimpleNamespace(
            log=context.log,
            dagster_run=context.dagster_run or SimpleNamespace(job_name="adhoc"),
            run_id=context.run_id,
            resource_config={
                "experiment_name": self.experiment_name,
                "mlflow_tracking_uri": self.tracking_uri,
                "parent_run_id": None,
                "mlflow_run_id": None,
                "env": {},
                "env_to_tag": None,
                "extra_tags": dict(self.extra_tags),
            },
        )
        return MlFlow(view)

    @contextlib.contextmanager
    def yield_for_execution(self, context: dg.InitResourceContext) -> Iterator[MlFlow]:
        import mlflow

        try:
            yield self.create_resource(context)
        finally:
            if mlflow.active_run() is not None:
                mlflow.end_run()


@contextlib.contextmanager
def failing_on_error(tracking: Any) -> Iterator[None]:
    """Mark this Dagster run's MLflow run FAILED if the block raises."""
    try:
        yield
    except BaseException:
        tracking.end_run(status="FAILED")
        raise


def _end_mlflow_on_run_finished(context: dg.HookContext, event_list: list) -> Any:
    from dagster_mlflow.hooks import end_mlflow_on_run_finished as upstream

    return upstream.hook_fn(context, event_list)


# dagster-mlflow's hook of the same name, imported when it runs rather than when the code location
# loads (importing dagster_mlflow pulls in all of MLflow, about a second on every process start).
end_mlflow_on_run_finished = dg.HookDefinition(
    name="end_mlflow_on_run_finished",
    hook_fn=_end_mlflow_on_run_finished,
    required_resource_keys={"mlflow"},
)


def run_link(tracking_uri: str, experiment_id: str, run_id: str) -> dg.MetadataValue:
    """A clickable link when MLflow has a UI at the tracking URI, the run id otherwise."""
    if tracking_uri.startswith(("http://", "https://")):
        return dg.MetadataValue.url(
            f"{tracking_uri.rstrip('/')}/#/experiments/{experiment_id}/runs/{run_id}"
        )
    return dg.MetadataValue.text(f"run {run_id} in {tracking_uri}")
