"""MLflow as this platform uses it: one resource that owns the MLflow client, for tracking and for
the Model Registry.

Tracking: every Dagster run has one MLflow run, tagged with the Dagster run id (`dagster_run_id`,
as dagster-mlflow tags it). A step opens it with `with mlflow.run():` (the first step starts it, a
later step of the same Dagster run finds it by that tag and resumes it); the block ends it FINISHED,
or FAILED when it raises, and a step that releases the resource ends whatever it left open. So no
MLflow run stays RUNNING after its step, whichever executor ran it, job or ad-hoc materialization.
A step killed outright (kill -9) ends nothing: the run-status sensors in automation/recovery.py
mark its MLflow run FAILED once Dagster marks the run failed.

One run per partition: the steps that write to MLflow (training, registration) refuse to start
while another live run of the same partition and overlapping assets got there first. The run queue
enforces the same rule (`tag_concurrency_limits` in dagster.yaml) for runs it launches, but
`dagster asset materialize` and `dagster job execute` bypass the queue; without this, two runs of
one day both trained and registered two versions from identical data. Dagster's pools limit a
pool, not a partition, so the check asks the instance itself (`earlier_live_run_of_partition`,
mlplatform/instance_queries/workers.py). A run whose worker the run launcher reports dead does not
count (run monitoring is about to mark it failed).

Registry: one registered model per dataset contract, with aliases `challenger` (the newest
registered) and `champion` (the one that scores).

Accounts (mlflow_accounts.py): behind an MLflow server with authentication, the process's account
(MLFLOW_TRACKING_USERNAME/PASSWORD, the platform's: it trains, registers and moves aliases) is
what every request carries, except inside `reading()`: a step that only reads the registry and
runs a model (batch_scores) goes as the read-only reader account when one is configured
(MLFLOW_READER_USERNAME/PASSWORD), so it needs no right to change the registry and cannot use one.

The registry's methods are model_registry.py's; opening the stores (and creating a new local
SQLite store once, whole), mlflow_store.py's; loading a model only in the skops format,
core.models'; comparing a challenger with the champion on the same rows, core.promote's.

MLflow is imported when a method needs it, not when the code location loads (about a second).

Where MLflow is and its accounts are `Locked` (resources/locked.py): set by the code location,
never by run config (MLflow would send its account to any tracking address a launch gave it).
The experiment, the registered model's name and the runs' tags stay run config.
"""

import contextlib
from collections.abc import Iterator
from typing import TYPE_CHECKING, Any

import dagster as dg
from pydantic import Field, PrivateAttr

from mlplatform.instance_queries import PARTITION_TAG, earlier_live_run_of_partition
from mlplatform.resources.locked import Locked, resolved
from mlplatform.resources.mlflow_accounts import (
    READER_PASSWORD_ENV,
    READER_USERNAME_ENV,
    as_reader,
)
from mlplatform.resources.mlflow_store import open_client
from mlplatform.resources.model_registry import CHALLENGER, CHAMPION, ModelRegistry

# The aliases are the registry's; importable from here, where the resource is.
__all__ = ["CHALLENGER", "CHAMPION", "MlflowResource", "dataset_digest"]

if TYPE_CHECKING:
    import pandas as pd
    from mlflow.models.model import ModelInfo
    from mlflow.tracking import MlflowClient

# A logged dataset's schema (column names and types) is inferred from this many first rows.
SCHEMA_SAMPLE_ROWS = 10_000


class MlflowResource(ModelRegistry, dg.ConfigurableResource):
    """The MLflow tracking server and Model Registry of this platform, through its own client
    (the registry's methods are `ModelRegistry`'s)."""

    # Where MLflow is and its accounts: Locked, not run config (see the module's docstring).
    tracking_uri: Locked[str] = Field(
        description="MLflow tracking URI (sqlite:///..., http://...)."
    )
    registry_uri: Locked[str | None] = Field(
        None, description="Model registry URI; the tracking URI if unset."
    )
    artifact_location: Locked[str] = Field(
        description="Where a new experiment stores its artifacts."
    )
    ui_url: Locked[str | None] = Field(
        None,
        description="The MLflow UI address people open, for links; the tracking URI if http(s).",
    )
    dagster_ui_url: Locked[str | None] = Field(
        None, description="The Dagster UI's base URL, for links back from MLflow runs."
    )
    reader_username: Locked[str | None] = Field(
        None,
        description=(
            "MLflow's read-only account, for steps that only read the registry and run a model "
            f"(from {READER_USERNAME_ENV}); unset, they use the process's own account."
        ),
    )
    reader_password: Locked[str | None] = Field(
        None, description=f"The read-only account's password (from {READER_PASSWORD_ENV})."
    )
    # Run config: which experiment and registered model, and the runs' tags.
    experiment_name: str = Field(description="MLflow experiment for training runs.")
    registered_model_name: str | None = Field(
        None, description="Registered model name; `<contract>_classifier` if unset."
    )
    extra_tags: dict[str, str] = Field(
        default_factory=dict, description="Tags on every MLflow run."
    )

    _client: Any = PrivateAttr(default=None)
    _experiment_id: str | None = PrivateAttr(default=None)
    _dagster_run_id: str | None = PrivateAttr(default=None)
    _run_name: str = PrivateAttr(default="adhoc")
    _log: Any = PrivateAttr(default=None)
    _open_run_id: str | None = PrivateAttr(default=None)
    _instance: Any = PrivateAttr(default=None)
    _dagster_run: Any = PrivateAttr(default=None)

    # Lifecycle -----------------------------------------------------------------------------------

    def setup_for_execution(self, context: dg.InitResourceContext) -> None:
        import mlflow

        # MLflow's fluent API (log_model, register_model) reads the process-wide URIs: set them
        # to this resource's own. Setting one also exports it (MLFLOW_TRACKING_URI...) to this
        # process's environment, where the settings read it: the registry URI only when it is
        # configured (unset, MLflow's registry is the tracking URI).
        mlflow.set_tracking_uri(self.tracking_uri)
        if self.registry_uri:
            mlflow.set_registry_uri(self.registry_uri)
        self._client = None
        self._experiment_id = None
        self._open_run_id = None
        self._dagster_run_id = context.run_id
        self._dagster_run = context.dagster_run
        self._instance = context.instance
        self._run_name = context.dagster_run.job_name if context.dagster_run else "adhoc"
        self._log = context.log

    def teardown_after_execution(self, context: dg.InitResourceContext) -> None:
        # Whatever the step left open (a block it never left, say) ends with the step.
        if self._open_run_id is not None:
            self._end_run("FINISHED")

    @contextlib.contextmanager
    def reading(self) -> Iterator[None]:
        """MLflow's requests inside the block go as the read-only reader account, when one is
        configured (see `mlflow_accounts.as_reader`); the block must not write to MLflow."""
        with as_reader(self.tracking_uri, self.reader_username, self.reader_password):
            yield

    @property
    def effective_registry_uri(self) -> str:
        return self.registry_uri or self.tracking_uri

    @property
    def client(self) -> "MlflowClient":
        """An MlflowClient on this resource's tracking and registry URIs."""
        if self._client is None:
            self._client = open_client(self.tracking_uri, self.effective_registry_uri)
        return self._client

    # Tracking ------------------------------------------------------------------------------------

    @property
    def experiment_id(self) -> str:
        """The experiment's id, creating it with an explicit artifact location (MLflow would
        otherwise put artifacts under ./mlruns of whatever the working directory happens to be)."""
        if self._experiment_id is None:
            from mlflow.exceptions import MlflowException

            experiment = self.client.get_experiment_by_name(self.experiment_name)
            if experiment is not None:
                self._experiment_id = experiment.experiment_id
            else:
                try:
                    self._experiment_id = self.client.create_experiment(
                        self.experiment_name, artifact_location=self.artifact_location
                    )
                except MlflowException:
                    # Another process created it in the meantime.
                    experiment = self.client.get_experiment_by_name(self.experiment_name)
                    if experiment is None:
                        raise
                    self._experiment_id = experiment.experiment_id
        return self._experiment_id

    @contextlib.contextmanager
    def run(self, name: str | None = None) -> Iterator[str]:
        """This Dagster run's MLflow run, active for MLflow's fluent API inside the block (its id
        is yielded): resumed when an earlier step started it, started otherwise (named `name`,
        say the asset and day, so runs do not all look alike; the job's name by default). Ended
        FINISHED after the block, FAILED if the block raises."""
        import mlflow

        if self._open_run_id is not None:  # already open in this step: the outer block ends it
            yield self._open_run_id
            return
        if self._dagster_run_id is None:
            raise RuntimeError("an MLflow run belongs to a Dagster run: open it inside a step")
        self._refuse_if_partition_is_taken()
        existing = self.client.search_runs(
            [self.experiment_id],
            filter_string=f"tags.dagster_run_id = '{self._dagster_run_id}'",
            max_results=1,
        )
        if existing:
            run = mlflow.start_run(run_id=existing[0].info.run_id)
        else:
            run = mlflow.start_run(
                experiment_id=self.experiment_id,
                run_name=name or self._run_name,
                tags={
                    "dagster_run_id": self._dagster_run_id,
                    **self._dagster_links(),
                    **self.extra_tags,
                },
            )
            if self._log is not None:
                self._log.info(
                    f"Started MLflow run {run.info.run_id} in experiment {self.experiment_name}"
                )
        self._open_run_id = run.info.run_id
        try:
            yield self._open_run_id
        except BaseException:
            self._end_run("FAILED")
            raise
        self._end_run("FINISHED")

    def _dagster_links(self) -> dict[str, str]:
        """The Dagster run as the MLflow run's description (a link MLflow's UI renders)."""
        base = resolved(self.dagster_ui_url)
        if not base:
            return {}
        url = f"{base.rstrip('/')}/runs/{self._dagster_run_id}"
        return {"dagster_run_url": url, "mlflow.note.content": f"Dagster run: [{url}]({url})"}

    @property
    def browsable_ui(self) -> str | None:
        """Where a browser finds MLflow's UI: the configured address, or the tracking URI when
        it is a web address; None for a local store (sqlite:///...)."""
        if self.ui_url:
            return self.ui_url.rstrip("/")
        if self.tracking_uri.startswith(("http://", "https://")):
            return self.tracking_uri.rstrip("/")
        return None

    def run_link(self, run_id: str) -> dg.MetadataValue:
        """The MLflow run as a link when there is a UI to open, its id and store otherwise."""
        if self.browsable_ui:
            return dg.MetadataValue.url(
                f"{self.browsable_ui}/#/experiments/{self.experiment_id}/runs/{run_id}"
            )
        return dg.MetadataValue.text(f"run {run_id} in {self.tracking_uri}")

    def version_link(self, model_name: str, version: str) -> dg.MetadataValue:
        if self.browsable_ui:
            return dg.MetadataValue.url(
                f"{self.browsable_ui}/#/models/{model_name}/versions/{version}"
            )
        return dg.MetadataValue.text(
            f"models:/{model_name}/{version} in {self.effective_registry_uri}"
        )

    def _refuse_if_partition_is_taken(self) -> None:
        """Fail fast (no retry) when an earlier live run of this run's partition overlaps its
        assets: see the module's docstring."""
        run, instance = self._dagster_run, self._instance
        if run is None or instance is None:
            return
        other = earlier_live_run_of_partition(instance, run)
        if other is not None:
            raise dg.Failure(
                description=(
                    f"partition {run.tags.get(PARTITION_TAG)} is being materialized by run "
                    f"{other.run_id} ({other.job_name}, {other.status.value}), which started "
                    "first: two runs of one partition would both train and register a model. "
                    "Run it again once that run has ended."
                ),
                metadata={"other_run_id": other.run_id, "partition": run.tags.get(PARTITION_TAG)},
                allow_retries=False,
            )

    def end_runs_of(self, dagster_run_id: str, status: str) -> list[str]:
        """End as `status` (FAILED, KILLED) the MLflow runs of a Dagster run still RUNNING,
        which happens only when its step was killed outright; their ids."""
        experiment = self.client.get_experiment_by_name(self.experiment_name)
        if experiment is None:  # nothing was ever tracked: nothing to end (and nothing created)
            return []
        open_runs = self.client.search_runs(
            [experiment.experiment_id],
            filter_string=(
                f"tags.dagster_run_id = '{dagster_run_id}' and attributes.status = 'RUNNING'"
            ),
        )
        for open_run in open_runs:
            self.client.set_terminated(open_run.info.run_id, status=status)
        return [open_run.info.run_id for open_run in open_runs]

    def _end_run(self, status: str) -> None:
        import mlflow

        active = mlflow.active_run()
        if active is not None and active.info.run_id == self._open_run_id:
            mlflow.end_run(status=status)
        elif self._open_run_id is not None:
            self.client.set_terminated(self._open_run_id, status=status)
        self._open_run_id = None

    @property
    def active_run_id(self) -> str:
        if self._open_run_id is None:
            raise RuntimeError("no MLflow run is open: use `with mlflow.run():`")
        return self._open_run_id

    def set_tags(self, tags: dict[str, Any]) -> None:
        from mlflow.entities import RunTag

        self.client.log_batch(self.active_run_id, tags=[RunTag(k, str(v)) for k, v in tags.items()])

    def log_params(self, params: dict[str, Any]) -> None:
        from mlflow.entities import Param

        self.client.log_batch(
            self.active_run_id, params=[Param(k, str(v)) for k, v in params.items()]
        )

    def log_metrics(
        self, metrics: dict[str, float], model_id: str | None = None, dataset: Any = None
    ) -> None:
        """Metrics of the open run; with `model_id` and `dataset` (from `log_dataset`) MLflow 3
        links them to the logged model and the data they were measured on."""
        import time

        from mlflow.entities import Metric

        now = int(time.time() * 1000)
        linked = {
            "model_id": model_id,
            "dataset_name": getattr(dataset, "name", None),
            "dataset_digest": getattr(dataset, "digest", None),
        }
        self.client.log_batch(
            self.active_run_id,
            metrics=[Metric(k, float(v), now, 0, **linked) for k, v in metrics.items()],
        )

    def log_dataset(
        self, frame: "pd.DataFrame", name: str, context: str, targets: str | None = None
    ) -> Any:
        """A DataFrame as an input of the open run (MLflow's Dataset: name, digest, schema and
        row count; the rows themselves are not copied); the dataset, to link metrics to.

        MLflow's own digest and schema cost about a minute at a million rows (its digest maps
        `type` over every cell, though it hashes only the first 10,000 rows; its schema inference
        visits every value of text and category columns in Python). Here the digest hashes every
        row, vectorized, and the schema, which follows the columns' types, is inferred from the
        first rows."""
        import mlflow
        import mlflow.data
        from mlflow.models import infer_signature

        dataset = mlflow.data.from_pandas(
            frame, name=name, targets=targets, digest=dataset_digest(frame)
        )
        # A cached property: set, it is not computed from every row.
        dataset.schema = infer_signature(frame.head(SCHEMA_SAMPLE_ROWS)).inputs
        if mlflow.active_run() is None or self._open_run_id is None:
            raise RuntimeError("no MLflow run is open: use `with mlflow.run():`")
        mlflow.log_input(dataset, context=context)
        return dataset

    def log_sklearn_model(self, model: Any, **arguments: Any) -> "ModelInfo":
        """`mlflow.sklearn.log_model` into the open run."""
        import mlflow.sklearn

        if mlflow.active_run() is None or self._open_run_id is None:
            raise RuntimeError("no MLflow run is open: use `with mlflow.run():`")
        return mlflow.sklearn.log_model(model, **arguments)

    def log_figure(self, figure: Any, artifact_file: str) -> None:
        """A matplotlib figure as an image artifact of the open run (MLflow's UI shows it)."""
        self.client.log_figure(self.active_run_id, figure, artifact_file)

    def log_table(self, rows: list[dict[str, Any]], artifact_file: str) -> None:
        """A table (one dict per row) as a JSON artifact of the open run, shown by MLflow's UI."""
        import pandas as pd

        frame = pd.DataFrame([{k: _plain(v) for k, v in row.items()} for row in rows])
        self.client.log_table(self.active_run_id, frame, artifact_file)


def dataset_digest(frame: "pd.DataFrame") -> str:
    """Eight hex digits (as MLflow shows digests) of every row's values, in order, and the column
    names: any changed cell changes it (MLflow's own digest reads only the first 10,000 rows)."""
    import hashlib

    import pandas as pd

    hashed = pd.util.hash_pandas_object(frame, index=False).to_numpy()
    return hashlib.md5(hashed.tobytes() + repr(list(frame.columns)).encode()).hexdigest()[:8]


def _plain(value: Any) -> Any:
    """Nested values as text: MLflow's tables hold scalars."""
    import json

    return json.dumps(value, sort_keys=True) if isinstance(value, dict | list) else value
