"""Credentials and addresses cannot be changed at launch (issue 25): where MLflow is and its
accounts, where data is read and stored and where alerts go are set by the code location (its
settings and environment), never by run config. A launch that names one, from the Launchpad's
GraphQL API, a job or an ad-hoc materialization, is refused before the run is created, naming the
field; tuning (the generator's dials, the experiment, the model search's config) stays settable.
"""

import dagster as dg
import pytest

from mlplatform.definitions import ASSETS, CHECKS, defs
from mlplatform_tests.conftest import make_platform

DAY = "2026-03-02"
JOB = "training_pipeline"

# All a launch may set on each resource: how it works, never where it points or who it is.
TUNABLE = {
    "io_manager": set(),
    "json_io_manager": set(),
    "data_source": {
        "kind", "file_format", "csv_max_field_chars", "generator", "outcomes_file_format",
    },
    "alert_webhook": {"timeout_seconds"},
    "mlflow": {"experiment_name", "registered_model_name", "extra_tags"},
}  # fmt: skip
# Every credential and address, with what someone at the Launchpad would put there.
ELSEWHERE = "http://collector.example:8080"
LOCKED = [
    ("mlflow", "tracking_uri", ELSEWHERE),
    ("mlflow", "registry_uri", ELSEWHERE),
    ("mlflow", "artifact_location", "s3://elsewhere/artifacts"),
    ("mlflow", "ui_url", ELSEWHERE),
    ("mlflow", "dagster_ui_url", ELSEWHERE),
    ("mlflow", "reader_username", "admin"),
    ("mlflow", "reader_password", "a-guess"),
    ("io_manager", "base_dir", "/tmp/elsewhere"),
    ("io_manager", "storage_options", {"endpoint_url": ELSEWHERE}),
    ("json_io_manager", "base_dir", "/tmp/elsewhere"),
    ("json_io_manager", "storage_options", {"endpoint_url": ELSEWHERE}),
    ("data_source", "path", "/etc"),
    ("data_source", "outcomes_path", "/etc"),
    ("alert_webhook", "url", f"{ELSEWHERE}/hook"),
    ("alert_webhook", "ui_url", ELSEWHERE),
]
LOCKED_IDS = [f"{key}.{field}" for key, field, _ in LOCKED]


def overriding(key: str, field: str, value) -> dict:
    return {"resources": {key: {"config": {field: value}}}}


def assert_refused_naming(message: str, key: str, field: str) -> None:
    assert f'unexpected config entry "{field}"' in message, message
    assert f"root:resources:{key}:config" in message, message


def test_each_locked_field_is_a_field_of_its_resource():
    """The list above names real fields (a misspelt one would be refused for that reason)."""
    for key, field, _ in LOCKED:
        assert field in type(defs.resources[key]).model_fields, (key, field)


def test_no_module_declaring_a_locked_field_postpones_its_annotations():
    """Dagster reads `Locked[...]` from the annotation itself: as text (`from __future__ import
    annotations`) the field would be refused at construction."""
    from pathlib import Path

    import mlplatform

    declaring = [
        path
        for path in Path(mlplatform.__file__).parent.rglob("*.py")
        if ": Locked[" in path.read_text()
    ]
    assert len(declaring) == 4, declaring  # mlflow, io_managers, data_source, alerts
    assert not [path for path in declaring if "from __future__ import" in path.read_text()]


def test_no_job_offers_a_credential_or_address_as_run_config():
    """Every job's run config, the Launchpad's form, offers each resource its tuning only. A
    field added to a resource shows up here until it is declared tunable or `Locked`."""
    jobs = defs.get_repository_def().get_all_jobs()
    assert {job.name for job in jobs} >= {JOB, "__ASSET_JOB", "retraining", "rollback"}
    for job in jobs:
        resources = job.run_config_schema.config_type.fields["resources"].config_type.fields
        offered = {key: set(field.config_type.fields["config"].config_type.fields)
                   for key, field in resources.items()}  # fmt: skip
        assert offered == TUNABLE, job.name


@pytest.mark.parametrize(("key", "field", "value"), LOCKED, ids=LOCKED_IDS)
def test_a_job_launched_with_a_locked_field_is_refused_before_any_step(key, field, value):
    instance = dg.DagsterInstance.ephemeral()
    with pytest.raises(dg.DagsterInvalidConfigError) as refused:
        defs.resolve_job_def(JOB).execute_in_process(
            run_config=overriding(key, field, value), partition_key=DAY, instance=instance
        )
    assert not instance.get_runs(), "the run was refused before it was created"
    assert_refused_naming(str(refused.value), key, field)


@pytest.mark.parametrize(("key", "field", "value"), LOCKED, ids=LOCKED_IDS)
def test_a_materialization_with_a_locked_field_is_refused(tmp_path, key, field, value):
    """An ad-hoc materialization with the resources as a test or the code location builds them:
    their values come from Python, and run config still cannot replace them."""
    platform = make_platform(tmp_path, rows_per_day=200)
    instance = dg.DagsterInstance.ephemeral()
    with pytest.raises(dg.DagsterInvalidConfigError) as refused:
        dg.materialize(
            [*ASSETS, *CHECKS],
            selection=["raw_transactions"],
            partition_key=DAY,
            resources=platform.resources,
            run_config=overriding(key, field, value),
            instance=instance,
        )
    assert not instance.get_runs()
    assert_refused_naming(str(refused.value), key, field)
    assert not (tmp_path / "data").exists() or not any((tmp_path / "data").rglob("*.parquet"))


def test_tuning_is_still_run_config_and_the_locked_values_hold(tmp_path):
    """The generator's dials and the resources' tuning are set at launch; the data lands where
    the code location said."""
    platform = make_platform(tmp_path, rows_per_day=200)
    with dg.instance_for_test() as instance:
        result = dg.materialize(
            [*ASSETS, *CHECKS],
            selection=["raw_transactions"],
            partition_key=DAY,
            resources=platform.resources,
            run_config={
                "resources": {
                    "data_source": {"config": {"generator": {"rows_per_day": 120}}},
                }
            },
            instance=instance,
        )
    assert result.success
    frame = result.output_for_node("raw_transactions")
    assert len(frame) == 120
    written = list((tmp_path / "data").rglob(f"{DAY}.parquet"))
    assert [path.parent.name for path in written] == ["raw_transactions"], written
    # The rest of the tuning, across the job's resources and its assets' config.
    tuning = {
        "resources": {
            "mlflow": {"config": {"experiment_name": "tuning", "extra_tags": {"who": "me"}}},
            "alert_webhook": {"config": {"timeout_seconds": 3.0}},
            "data_source": {"config": {"generator": {"incident": "volume_drop"}}},
        },
        "ops": {"trained_model": {"config": {"threshold_metric": "precision"}}},
    }
    assert dg.validate_run_config(defs.resolve_job_def(JOB), tuning)


# The Launchpad itself: the UI's GraphQL API, on the platform's own definitions in this process.
CONFIG_VALID = """
query ($selector: PipelineSelector!, $runConfigData: RunConfigData!) {
  isPipelineConfigValid(pipeline: $selector, mode: "default", runConfigData: $runConfigData) {
    __typename
    ... on RunConfigValidationInvalid { errors { message } }
  }
}
"""


@pytest.fixture(scope="module")
def launchpad():
    """A GraphQL request context on the platform's code location, as the webserver has one."""
    from dagster._core.test_utils import in_process_test_workspace
    from dagster._core.types.loadable_target_origin import LoadableTargetOrigin

    origin = LoadableTargetOrigin(module_name="mlplatform.definitions", attribute="defs")
    with (
        dg.instance_for_test() as instance,
        in_process_test_workspace(instance, origin) as context,
    ):
        (location,) = context.code_location_names
        selector = {
            "repositoryLocationName": location,
            "repositoryName": "__repository__",
            "pipelineName": JOB,
        }
        yield instance, context, selector


def graphql(context, query: str, variables: dict) -> dict:
    from dagster_graphql.test.utils import execute_dagster_graphql

    result = execute_dagster_graphql(context, query, variables)
    assert not result.errors, result.errors
    return result.data


@pytest.mark.parametrize(("key", "field", "value"), LOCKED, ids=LOCKED_IDS)
def test_the_launchpad_refuses_a_locked_field(launchpad, key, field, value):
    from dagster_graphql.client.query import LAUNCH_PIPELINE_EXECUTION_MUTATION

    instance, context, selector = launchpad
    params = {
        "selector": selector,
        "runConfigData": overriding(key, field, value),
        "executionMetadata": {"tags": [{"key": "dagster/partition", "value": DAY}]},
    }
    answer = graphql(context, LAUNCH_PIPELINE_EXECUTION_MUTATION, {"executionParams": params})
    launched = answer["launchPipelineExecution"]
    assert launched["__typename"] == "RunConfigValidationInvalid", launched
    assert_refused_naming(" ".join(e["message"] for e in launched["errors"]), key, field)
    assert not instance.get_runs()


def test_the_launchpad_accepts_tuning(launchpad):
    _, context, selector = launchpad
    tuning = {
        "resources": {
            "data_source": {"config": {"generator": {"incident": "schema_break"}}},
            "mlflow": {"config": {"experiment_name": "tuning"}},
        },
        "ops": {"trained_model": {"config": {"threshold_metric": "recall"}}},
    }
    answer = graphql(context, CONFIG_VALID, {"selector": selector, "runConfigData": tuning})
    assert answer["isPipelineConfigValid"]["__typename"] == "PipelineConfigValidationValid", answer


RESOURCES_PAGE = """
query ($selector: RepositorySelector!) {
  allTopLevelResourceDetailsOrError(repositorySelector: $selector) {
    __typename
    ... on ResourceDetailsList {
      results { name configFields { name } configuredValues { key value } nestedResources { name } }
    }
  }
}
"""


def test_the_ui_names_the_locked_fields_without_their_values(launchpad):
    """The resource page lists each resource's run config and, by name only, its locked fields."""
    _, context, selector = launchpad
    repository = {key: selector[key] for key in ("repositoryLocationName", "repositoryName")}
    answer = graphql(context, RESOURCES_PAGE, {"selector": repository})
    pages = {page["name"]: page for page in answer["allTopLevelResourceDetailsOrError"]["results"]}
    for key, tunable in TUNABLE.items():
        assert {field["name"] for field in pages[key]["configFields"]} == tunable, key
        assert {value["key"] for value in pages[key]["configuredValues"]} <= tunable, key
    # Those the code location gave (the reader account only where its variables are set).
    for key in TUNABLE:
        named = {nested["name"] for nested in pages[key]["nestedResources"]}
        assert named <= {field for locked, field, _ in LOCKED if locked == key}, key
    assert {"tracking_uri", "artifact_location"} <= {
        nested["name"] for nested in pages["mlflow"]["nestedResources"]
    }
    mlflow = defs.resources["mlflow"]
    assert mlflow.tracking_uri not in str(pages["mlflow"]), "an address's value is not shown"
