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
pool, not a partition, so the check asks the instance itself. A run whose worker the run launcher
reports dead does not count (run monitoring is about to mark it failed).

Registry: one registered model per dataset contract, with aliases `challenger` (the newest
registered) and `champion` (the one that scores).

Accounts: behind an MLflow server with authentication, the process's account
(MLFLOW_TRACKING_USERNAME/PASSWORD, the platform's: it trains, registers and moves aliases) is
what every request carries, except inside `reading()`: a step that only reads the registry and
runs a model (batch_scores) goes as the read-only reader account when one is configured
(MLFLOW_READER_USERNAME/PASSWORD), so it needs no right to change the registry and cannot use one.

MLflow is imported when a method needs it, not when the code location loads (about a second).
"""

from __future__ import annotations

import contextlib
import os
import tempfile
from collections.abc import Iterator
from typing import TYPE_CHECKING, Any

import dagster as dg
from pydantic import Field, PrivateAttr

if TYPE_CHECKING:
    import pandas as pd
    from mlflow.entities.model_registry import ModelVersion
    from mlflow.models.model import ModelInfo
    from mlflow.tracking import MlflowClient

CHAMPION = "champion"
CHALLENGER = "challenger"
PARTITION_TAG = "dagster/partition"
# A logged dataset's schema (column names and types) is inferred from this many first rows.
SCHEMA_SAMPLE_ROWS = 10_000

# MLflow's client reads the account of every request from these (mlflow.utils.credentials).
ACCOUNT_USERNAME_ENV = "MLFLOW_TRACKING_USERNAME"
ACCOUNT_PASSWORD_ENV = "MLFLOW_TRACKING_PASSWORD"
# The read-only account's, as the deployment provides them (docker/.env).
READER_USERNAME_ENV = "MLFLOW_READER_USERNAME"
READER_PASSWORD_ENV = "MLFLOW_READER_PASSWORD"


class MlflowResource(dg.ConfigurableResource):
    """The MLflow tracking server and Model Registry of this platform, through its own client."""

    tracking_uri: str = Field(description="MLflow tracking URI (sqlite:///..., http://...).")
    registry_uri: str | None = Field(
        None, description="Model registry URI; the tracking URI if unset."
    )
    artifact_location: str = Field(description="Where a new experiment stores its artifacts.")
    experiment_name: str = Field(description="MLflow experiment for training runs.")
    registered_model_name: str | None = Field(
        None, description="Registered model name; `<contract>_classifier` if unset."
    )
    extra_tags: dict[str, str] = Field(
        default_factory=dict, description="Tags on every MLflow run."
    )
    ui_url: str | None = Field(
        None,
        description="The MLflow UI address people open, for links; the tracking URI if http(s).",
    )
    dagster_ui_url: str | None = Field(
        None, description="The Dagster UI's base URL, for links back from MLflow runs."
    )
    reader_username: str | None = Field(
        None,
        description=(
            "MLflow's read-only account, for steps that only read the registry and run a model "
            f"(from {READER_USERNAME_ENV}); unset, they use the process's own account."
        ),
    )
    reader_password: str | None = Field(
        None, description=f"The read-only account's password (from {READER_PASSWORD_ENV})."
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
        configured (nothing changes otherwise): MLflow's client takes the account from the
        environment at each request, so it is set for the block and the previous one put back
        after it, also when the block raises (the in-process executor runs later steps, which
        write, in this same process). The block must not write to MLflow. A request the server
        refuses fails the step without retry, naming the account, never its password."""
        username, password = (
            # Unresolved when the resource is used outside a run (the definitions' own object).
            value.get_value() if isinstance(value, dg.EnvVar) else value
            for value in (self.reader_username, self.reader_password)
        )
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
        saved = {
            name: os.environ.get(name) for name in (ACCOUNT_USERNAME_ENV, ACCOUNT_PASSWORD_ENV)
        }
        os.environ[ACCOUNT_USERNAME_ENV] = username
        os.environ[ACCOUNT_PASSWORD_ENV] = password
        try:
            yield
        except Exception as error:
            refused = _refusal(error)
            if refused is None:
                raise
            raise dg.Failure(
                description=(
                    f"MLflow at {self.tracking_uri} refused the reader account "
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

    @property
    def effective_registry_uri(self) -> str:
        return self.registry_uri or self.tracking_uri

    @property
    def client(self) -> MlflowClient:
        """An MlflowClient on this resource's tracking and registry URIs."""
        if self._client is None:
            from mlflow.tracking import MlflowClient

            with _sqlite_store_initialization(self.tracking_uri, self.effective_registry_uri):
                client = MlflowClient(
                    tracking_uri=self.tracking_uri, registry_uri=self.effective_registry_uri
                )
                # Opening the stores creates a new database's tables; done here, under the lock.
                client.search_experiments(max_results=1)
                client.search_registered_models(max_results=1)
            self._client = client
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
        if not self.dagster_ui_url:
            return {}
        url = f"{self.dagster_ui_url.rstrip('/')}/runs/{self._dagster_run_id}"
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
        self, frame: pd.DataFrame, name: str, context: str, targets: str | None = None
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

    def log_sklearn_model(self, model: Any, **arguments: Any) -> ModelInfo:
        """`mlflow.sklearn.log_model` into the open run."""
        import mlflow.sklearn

        if mlflow.active_run() is None or self._open_run_id is None:
            raise RuntimeError("no MLflow run is open: use `with mlflow.run():`")
        return mlflow.sklearn.log_model(model, **arguments)

    # Registry ------------------------------------------------------------------------------------

    def model_name_for(self, contract_name: str) -> str:
        """The registered model of a dataset contract."""
        return self.registered_model_name or f"{contract_name}_classifier"

    def current_champion(self, model_name: str) -> ModelVersion | None:
        """The model version holding `champion`, or None when there is none (or no model yet)."""
        return self.version_by_alias(model_name, CHAMPION)

    def register_version(
        self, model_uri: str, model_name: str, tags: dict[str, str]
    ) -> ModelVersion:
        """A new version of `model_name` (created if need be) for a logged model."""
        import mlflow

        # mlflow.register_model resolves a logged model's `models:/m-...` URI to its source and
        # run; it reads the process-wide URIs, which setup_for_execution set to this resource's.
        return mlflow.register_model(model_uri, model_name, tags=tags)

    def describe_model(self, model_name: str, description: str) -> None:
        """The registered model's description (what it predicts), shown in the registry's UI."""
        self.client.update_registered_model(model_name, description=description)

    def describe_version(self, model_name: str, version: str, description: str) -> None:
        self.client.update_model_version(model_name, version, description=description)

    def set_alias(self, model_name: str, alias: str, version: str) -> None:
        self.client.set_registered_model_alias(model_name, alias, version)

    def move_champion(
        self, model_name: str, version: str, reason: str, evidence: dict[str, Any] | None = None
    ) -> str | None:
        """Give `champion` to `version`, recording on it why, on what evidence, and which version
        held the alias before (the one a rollback returns to). Registration, a promotion on live
        outcomes and a rollback all move the alias here, so every move says why in the registry.
        The version that held `champion` before (None: none did)."""
        import json
        import time

        current = self.current_champion(model_name)
        previous = None if current is None else str(current.version)
        if previous == str(version):
            return previous
        self.client.set_registered_model_alias(model_name, CHAMPION, str(version))
        self.tag_version(
            model_name,
            str(version),
            {
                "champion_reason": reason[:4000],
                "champion_evidence": json.dumps(evidence or {}, default=str, sort_keys=True)[:4000],
                "champion_since": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
                "previous_champion": previous or "",
            },
        )
        return previous

    def predecessor_of(self, model_name: str, version: str) -> str | None:
        """The version that held `champion` before `version` took it (None: none did, or
        `version` never held it)."""
        tags = self.client.get_model_version(model_name, str(version)).tags
        return tags.get("previous_champion") or None

    def version_by_alias(self, model_name: str, alias: str) -> ModelVersion | None:
        """The version holding `alias`, or None when no version does."""
        from mlflow.exceptions import MlflowException

        try:
            return self.client.get_model_version_by_alias(model_name, alias)
        except MlflowException as error:
            if error.error_code in ("RESOURCE_DOES_NOT_EXIST", "INVALID_PARAMETER_VALUE"):
                return None
            raise

    def tag_version(self, model_name: str, version: str, tags: dict[str, str]) -> None:
        for key, value in tags.items():
            self.client.set_model_version_tag(model_name, version, key, value)

    def _model_version_of(self, model_uri: str) -> ModelVersion:
        """The version a `models:/<name>/<version>` or `models:/<name>@<alias>` URI names."""
        reference = model_uri.removeprefix("models:/")
        if "@" in reference:
            name, alias = reference.split("@", 1)
            return self.client.get_model_version_by_alias(name, alias)
        name, version = reference.rsplit("/", 1)
        return self.client.get_model_version(name, version)

    def _download(self, model_uri: str, into: str, path: str = "") -> str:
        """A registered model's files (or the one at `path` in it), downloaded into `into`.
        Resolved through this resource's own registry: MLflow's own `models:/` resolution reads
        the process-wide registry URI whatever it is given."""
        import mlflow.artifacts

        version = self._model_version_of(model_uri)
        location = self.client.get_model_version_download_uri(version.name, version.version)
        return mlflow.artifacts.download_artifacts(
            artifact_uri=f"{location.rstrip('/')}/{path}" if path else location,
            dst_path=into,
            tracking_uri=self.tracking_uri,
        )

    def model_input_columns(self, model_uri: str) -> list[str]:
        """The input column names recorded in a registered model's signature."""
        from mlflow.models import Model

        with tempfile.TemporaryDirectory() as folder:
            return _input_columns(
                model_uri, Model.load(self._download(model_uri, folder, "MLmodel"))
            )

    def load_sklearn_model(self, model_uri: str) -> Any:
        """A registered scikit-learn model (see `_load`)."""
        return self._load(model_uri)[0]

    def load_with_inputs(self, model_uri: str) -> tuple[Any, list[str]]:
        """A registered scikit-learn model and its signature's input columns, from one download."""
        model, description = self._load(model_uri)
        return model, _input_columns(model_uri, description)

    def _load(self, model_uri: str) -> tuple[Any, Any]:
        """The model and its MLmodel description. Loaded in the skops format only and trusting
        only the types this code's model families are made of (`SKOPS_TRUSTED_TYPES`), never the
        list written in the model's own files: a version whose files ask for pickle or hold any
        other type is refused, so a crafted model cannot run code where it is loaded."""
        from mlflow.models import Model

        with tempfile.TemporaryDirectory() as folder:
            local = self._download(model_uri, folder)
            description = Model.load(os.path.join(local, "MLmodel"))
            flavor = description.flavors.get("sklearn", {})
            return load_trusted_skops(model_uri, local, flavor), description

    def test_scores(self, model_uri: str, features: pd.DataFrame) -> tuple[Any | None, str]:
        """The model's scores on this features table's test split (None, with the reason, when its
        inputs are not all among the features)."""
        from mlplatform.core.train import split_xy

        model, columns = self.load_with_inputs(model_uri)
        missing = [c for c in columns if c not in features.columns]
        if missing:
            return None, f"{model_uri} needs columns the features lack: {missing}"
        x_test, _ = split_xy(features, "test", columns)
        return model.predict_proba(x_test)[:, 1], model_uri

    def compare_with_champion(
        self,
        model_name: str,
        features: pd.DataFrame,
        challenger_scores: Any,
        challenger_threshold: float,
        metric: str,
        *,
        seed: int,
        resamples: int,
    ) -> dict[str, Any]:
        """The champion scored on the same test rows as the challenger, and the paired difference
        challenger - champion on `metric` with its 95% interval (None without a champion, or when
        the champion cannot score these features: `basis` says which)."""
        from mlplatform.core.evaluate import classification_metrics
        from mlplatform.core.features import test_labels
        from mlplatform.core.uncertainty import metric_interval, paired_difference

        champion = self.current_champion(model_name)
        if champion is None:
            return {"champion_version": None, "basis": "no champion yet", "difference": None}
        version = str(champion.version)
        threshold = float(champion.tags.get("decision_threshold", 0.5))
        scores, basis = self.test_scores(f"models:/{model_name}/{version}", features)
        if scores is None:
            return {"champion_version": version, "basis": basis, "difference": None}
        labels = test_labels(features)
        difference = paired_difference(
            labels, challenger_scores, scores, metric,
            threshold_challenger=challenger_threshold, threshold_champion=threshold,
            seed=seed, resamples=resamples,
        )  # fmt: skip
        return {
            "champion_version": version,
            "basis": f"champion v{version} on the new test split",
            "metric": metric,
            "difference": difference.to_dict(),
            "champion_interval": metric_interval(
                labels, scores, threshold, metric, seed=seed, resamples=resamples
            ).to_dict(),
            "champion_metrics": classification_metrics(labels, scores, threshold),
        }

    def log_figure(self, figure: Any, artifact_file: str) -> None:
        """A matplotlib figure as an image artifact of the open run (MLflow's UI shows it)."""
        self.client.log_figure(self.active_run_id, figure, artifact_file)

    def log_table(self, rows: list[dict[str, Any]], artifact_file: str) -> None:
        """A table (one dict per row) as a JSON artifact of the open run, shown by MLflow's UI."""
        import pandas as pd

        frame = pd.DataFrame([{k: _plain(v) for k, v in row.items()} for row in rows])
        self.client.log_table(self.active_run_id, frame, artifact_file)


@contextlib.contextmanager
def _sqlite_store_initialization(*uris: str) -> Iterator[None]:
    """One process at a time creates a new local SQLite MLflow store, whole or not at all.
    MLflow creates a new database's tables when a process first opens it, in some thirty
    migrations that each commit: two processes doing so at once (two runs training side by side
    on a fresh deployment), or one killed in the middle (a run's first training killed with
    SIGKILL), left a half-created schema that every later open failed on (`table trace_info
    already exists`). An exclusive lock on a file beside the database makes the first open
    create it and the others find it done; it is built under a temporary name and linked into
    place once complete. A store that exists is whole, so it is opened without the lock: a
    process stopped or hung while holding it would otherwise hold up every step that opens the
    store, for as long as it lives."""
    import fcntl

    paths = sorted({uri.removeprefix("sqlite:///") for uri in uris if uri.startswith("sqlite:///")})
    with contextlib.ExitStack() as held:
        for path in paths:
            if os.path.exists(path):
                continue
            os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
            handle = held.enter_context(open(f"{path}.init-lock", "a"))
            fcntl.flock(handle, fcntl.LOCK_EX)
            held.callback(fcntl.flock, handle, fcntl.LOCK_UN)
            if not os.path.exists(path):
                _create_sqlite_store(path)
        yield


def _create_sqlite_store(path: str) -> None:
    """A new SQLite MLflow store at `path`, its schema complete (called under the lock)."""
    from mlflow.tracking import MlflowClient

    building = f"{path}.creating"
    for leftover in (building, f"{building}-journal"):  # of a process killed while building it
        with contextlib.suppress(FileNotFoundError):
            os.remove(leftover)
    uri = f"sqlite:///{building}"
    client = MlflowClient(tracking_uri=uri, registry_uri=uri)
    client.search_experiments(max_results=1)
    client.search_registered_models(max_results=1)
    # Linked, not renamed over: a process that opened the store without this lock (an MLflow
    # server) may have created it meanwhile, and its file is kept.
    with contextlib.suppress(FileExistsError):
        os.link(building, path)
    os.remove(building)


def dataset_digest(frame: pd.DataFrame) -> str:
    """Eight hex digits (as MLflow shows digests) of every row's values, in order, and the column
    names: any changed cell changes it (MLflow's own digest reads only the first 10,000 rows)."""
    import hashlib

    import pandas as pd

    hashed = pd.util.hash_pandas_object(frame, index=False).to_numpy()
    return hashlib.md5(hashed.tobytes() + repr(list(frame.columns)).encode()).hexdigest()[:8]


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


def _refusal(error: BaseException) -> str | None:
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


def _input_columns(model_uri: str, description: Any) -> list[str]:
    if description.signature is None:
        raise ValueError(f"{model_uri} has no signature; cannot tell its input columns")
    return list(description.signature.inputs.input_names())


def _plain(value: Any) -> Any:
    """Nested values as text: MLflow's tables hold scalars."""
    import json

    return json.dumps(value, sort_keys=True) if isinstance(value, dict | list) else value


class UntrustedModelError(ValueError):
    """A registered model asks for pickle, or holds a type this code does not trust."""


def load_trusted_skops(model_uri: str, local: str, flavor: dict[str, Any]) -> Any:
    import skops.io

    from mlplatform.core.models import SKOPS_TRUSTED_TYPES

    serialization = flavor.get("serialization_format")
    if serialization != "skops":
        raise UntrustedModelError(
            f"{model_uri}: stored as '{serialization}'; only the skops format is loaded "
            "(pickle can run code on load)"
        )
    path = os.path.join(local, flavor.get("pickled_model", "model.skops"))
    untrusted = sorted(set(skops.io.get_untrusted_types(file=path)) - set(SKOPS_TRUSTED_TYPES))
    if untrusted:
        raise UntrustedModelError(
            f"{model_uri}: holds types this platform does not trust: {untrusted}"
        )
    return skops.io.load(path, trusted=list(SKOPS_TRUSTED_TYPES))


def earlier_live_run_of_partition(
    instance: dg.DagsterInstance, run: dg.DagsterRun
) -> dg.DagsterRun | None:
    """The live run (starting, started, cancelling) of `run`'s partition that was created before
    it and overlaps its assets (a run without an asset selection covers all), whose worker is not
    known to be dead; None when there is none or `run` is not of one partition."""
    partition = run.tags.get(PARTITION_TAG)
    if partition is None:
        return None
    records = instance.get_run_records(
        dg.RunsFilter(
            statuses=[
                dg.DagsterRunStatus.STARTING,
                dg.DagsterRunStatus.STARTED,
                dg.DagsterRunStatus.CANCELING,
            ],
            tags={PARTITION_TAG: partition},
        )
    )
    own = instance.get_run_record_by_id(run.run_id)
    own_key = (own.create_timestamp, run.run_id) if own is not None else None
    for record in sorted(records, key=lambda r: (r.create_timestamp, r.dagster_run.run_id)):
        other = record.dagster_run
        if other.run_id == run.run_id:
            continue
        if own_key is not None and (record.create_timestamp, other.run_id) > own_key:
            continue  # it came second: it is the one to refuse
        if not _assets_overlap(run.asset_selection, other.asset_selection):
            continue
        if _worker_known_dead(instance, other):
            continue
        return other
    return None


def _assets_overlap(ours: Any, theirs: Any) -> bool:
    return ours is None or theirs is None or bool(set(ours) & set(theirs))


def _worker_known_dead(instance: dg.DagsterInstance, run: dg.DagsterRun) -> bool:
    from dagster._core.launcher import WorkerStatus

    launcher = instance.run_launcher
    if run.status != dg.DagsterRunStatus.STARTED or not launcher.supports_check_run_worker_health:
        return False
    try:
        health = launcher.check_run_worker_health(run)
    except Exception:  # a launcher that cannot tell (no Docker socket here, say): trust the status
        return False
    return health.status not in (WorkerStatus.RUNNING, WorkerStatus.SUCCESS)
