"""The deployment for real (issue 25): docker/deploy-pipeline.sh brings the compose stack up on a
real Docker engine (local base images, no registry), and against the running stack a day is
materialized from the UI's GraphQL API through the login, in its own container under its limits;
its container is killed mid-training and the run comes back; PostgreSQL and then the daemon
restart mid-backfill and nothing is lost; Prometheus scrapes the exporter with the shipped rules.

The tests share one stack, in this order (each builds on the state the one before left)."""

import json
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import yaml

from mlplatform_tests.servers import wait_until
from mlplatform_tests.stack import RUN_LABEL, Stack, deployed_stack, http
from mlplatform_tests.stack import run as run_command

# The stack is deployed inside the first test (its fixture), and a run is waited for twice.
pytestmark = [pytest.mark.slow, pytest.mark.stack, pytest.mark.timeout(2400)]

REPOSITORY = {"repositoryLocationName": "mlplatform", "repositoryName": "__repository__"}
JOB = "training_pipeline"
FIRST_DAY = "2026-01-01"
BACKFILL_DAYS = ["2026-01-02", "2026-01-03"]
RUN_WAIT = 900
PARTITION_SET = {"partitionSetName": f"{JOB}_partition_set", "repositorySelector": REPOSITORY}

LAUNCH = """
mutation Launch($params: ExecutionParams!) {
  launchRun(executionParams: $params) {
    __typename
    ... on LaunchRunSuccess { run { runId } }
    ... on Error { message }
  }
}"""
RUNS = """
query Runs($filter: RunsFilter) {
  runsOrError(filter: $filter) {
    ... on Runs { results { runId status tags { key value } } }
  }
}"""
STEPS_STARTED = """
query Steps($runId: ID!) {
  logsForRun(runId: $runId) {
    ... on EventConnection { events { __typename ... on ExecutionStepStartEvent { stepKey } } }
  }
}"""
CLAIMED_SLOTS = """
{ instance { concurrencyLimits { concurrencyKey claimedSlots { runId stepKey } } } }"""
MATERIALIZATIONS = """
query Materializations($path: [String!]!, $partitions: [String!]) {
  assetOrError(assetKey: {path: $path}) {
    ... on Asset {
      assetMaterializations(partitions: $partitions) {
        partition runId timestamp
        metadataEntries { label ... on IntMetadataEntry { intValue } }
      }
    }
  }
}"""


@pytest.fixture(scope="module")
def stack(tmp_path_factory) -> Iterator[Stack]:
    yield from deployed_stack(tmp_path_factory.mktemp("stack"))


def launch_day(stack: Stack, day: str, *, viewer: bool = False) -> dict:
    params = {
        "selector": {**REPOSITORY, "jobName": JOB},
        "runConfigData": {},
        "executionMetadata": {"tags": [{"key": "dagster/partition", "value": day}]},
    }
    return stack.graphql(LAUNCH, {"params": params}, viewer=viewer)["launchRun"]


def runs_of_day(stack: Stack, day: str) -> list[dict]:
    # The training job's runs only: outcomes arriving also start monitoring runs of a scored day.
    day_tag = {"key": "dagster/partition", "value": day}
    answer = stack.graphql(RUNS, {"filter": {"pipelineName": JOB, "tags": [day_tag]}})
    return answer["runsOrError"]["results"]


def claimed_slots(stack: Stack, days: list[str]) -> list[dict]:
    """Pool slots held by runs of `days` (the daily schedule may be training another day)."""
    runs = {run["runId"] for day in days for run in runs_of_day(stack, day)}
    limits = stack.graphql(CLAIMED_SLOTS)["instance"]["concurrencyLimits"]
    return [slot for limit in limits for slot in limit["claimedSlots"] if slot["runId"] in runs]


def materializations(stack: Stack, asset: str, day: str) -> list[dict]:
    answer = stack.graphql(MATERIALIZATIONS, {"path": [asset], "partitions": [day]})
    return answer["assetOrError"]["assetMaterializations"]


def day_succeeded(stack: Stack, day: str) -> bool:
    """The day has a successful run (the first, its resumption or its retry) and none unfinished;
    fails at once when every run of the day failed and no retry is coming."""
    runs = runs_of_day(stack, day)
    tags = {run["runId"]: {tag["key"]: tag["value"] for tag in run["tags"]} for run in runs}
    statuses = {run["status"] for run in runs}
    if statuses & {"QUEUED", "NOT_STARTED", "STARTING", "STARTED", "CANCELING"}:
        return False
    if "SUCCESS" in statuses:
        return True
    parents = {each.get("dagster/parent_run_id") for each in tags.values()}
    retry_coming = [
        run_id
        for run_id, each in tags.items()
        if each.get("dagster/will_retry") == "true" and run_id not in parents
    ]
    if not retry_coming:
        raise AssertionError(f"{day}: every run failed, no retry coming: {sorted(tags)}")
    return False


def test_the_ui_asks_for_a_login_and_viewers_change_nothing(stack):
    assert http(stack.ui)[0] == 401
    assert http(stack.ui, auth=(stack.operator()[0], "wrong"))[0] == 401
    assert http(f"{stack.ui}/server_info", auth=stack.operator())[0] == 200
    assert http(stack.viewer_ui)[0] == 401
    assert http(f"{stack.viewer_ui}/server_info", auth=stack.viewer())[0] == 200
    # The read-only webserver refuses to launch, whoever asks.
    refused = launch_day(stack, FIRST_DAY, viewer=True)
    assert refused["__typename"] == "UnauthorizedError", refused
    # Only the login proxy and MLflow are published, on 127.0.0.1 alone.
    published = {}
    for service in stack.compose_run("ps", "--services").split():
        container = stack.container(service)
        if not container:
            continue
        ports = stack.inspect(container)["HostConfig"]["PortBindings"] or {}
        for bindings in ports.values():
            for binding in bindings or []:
                published.setdefault(service, []).append(binding["HostIp"])
    assert set(published) == {"login-proxy", "mlflow"}, published
    assert {ip for ips in published.values() for ip in ips} == {"127.0.0.1"}


def test_a_day_runs_in_its_own_container_survives_a_kill_and_registers(stack):
    launched = launch_day(stack, FIRST_DAY)
    assert launched["__typename"] == "LaunchRunSuccess", launched
    run_id = launched["run"]["runId"]
    container = wait_until(
        lambda: stack.run_containers(run_id), 300, "the run's container", interval=3
    )[0]
    host = stack.inspect(container)["HostConfig"]
    assert host["Memory"] == 3 * 1024**3 and host["NanoCpus"] == 1_500_000_000, host
    assert not host["Privileged"], host
    assert all(not bind.startswith("/") for bind in host.get("Binds") or []), host["Binds"]

    def training() -> bool:
        events = stack.graphql(STEPS_STARTED, {"runId": run_id})["logsForRun"]["events"]
        if any(event.get("stepKey") == "trained_model" for event in events):
            return True
        day_succeeded(stack, FIRST_DAY)  # fails at once when every run of the day failed
        return False

    wait_until(training, RUN_WAIT, "trained_model to start", interval=3)
    time.sleep(5)
    run_command([stack.docker, "kill", container])
    # Run monitoring sees the container gone, and the run is resumed or retried until it succeeds.
    wait_until(lambda: day_succeeded(stack, FIRST_DAY), RUN_WAIT,
               f"{FIRST_DAY} to succeed after the kill", interval=10)  # fmt: skip
    runs = runs_of_day(stack, FIRST_DAY)
    shown = [
        (run["runId"][:8], run["status"], {tag["key"]: tag["value"] for tag in run["tags"]})
        for run in runs
    ]
    assert [run["status"] for run in runs].count("SUCCESS") == 1, shown
    # No slot is held by anything once the day is done.
    wait_until(
        lambda: not claimed_slots(stack, [FIRST_DAY]), 120, "every pool slot free", interval=3
    )
    # Registered in the MLflow server: a version holds `champion`.
    auth = (stack.value("MLFLOW_PLATFORM_USERNAME"), stack.value("MLFLOW_PLATFORM_PASSWORD"))
    status, body = http(f"{stack.mlflow}/api/2.0/mlflow/registered-models/search", None, auth)
    assert status == 200, body[:300]
    models = json.loads(body)["registered_models"]
    aliases = [alias["alias"] for model in models for alias in model.get("aliases", [])]
    assert "champion" in aliases, models
    assert _row_count(stack, "batch_scores", FIRST_DAY) > 0


def test_the_exporter_is_scraped_and_the_alert_rules_are_loaded(stack):
    def targets_up() -> bool:
        answer = json.loads(stack.exec(
            "prometheus", "wget", "-qO-", "http://127.0.0.1:9090/api/v1/targets"
        ))  # fmt: skip
        active = answer["data"]["activeTargets"]
        return bool(active) and all(target["health"] == "up" for target in active)

    wait_until(targets_up, 180, "Prometheus to scrape the exporter", interval=5)
    rules = json.loads(
        stack.exec("prometheus", "wget", "-qO-", "http://127.0.0.1:9090/api/v1/rules")
    )
    loaded = {group["name"] for group in rules["data"]["groups"]}
    shipped = Path(__file__).resolve().parents[1] / "mlplatform/monitoring/prometheus"
    expected = {
        group["name"]
        for path in shipped.glob("*rules*.yml")
        for group in yaml.safe_load(path.read_text())["groups"]
    }
    assert expected and expected <= loaded, (expected, loaded)


def test_postgres_and_then_the_daemon_restart_mid_backfill_and_nothing_is_lost(stack):
    launched = stack.graphql(
        """mutation Backfill($params: LaunchBackfillParams!) {
          launchPartitionBackfill(backfillParams: $params) {
            __typename ... on LaunchBackfillSuccess { backfillId } ... on Error { message }
          }
        }""",
        {"params": {"selector": PARTITION_SET, "partitionNames": BACKFILL_DAYS}},
    )["launchPartitionBackfill"]  # fmt: skip
    assert launched["__typename"] == "LaunchBackfillSuccess", launched

    def a_run_is_going() -> bool:
        return any(
            run["status"] == "STARTED" for day in BACKFILL_DAYS for run in runs_of_day(stack, day)
        )

    wait_until(a_run_is_going, RUN_WAIT, "a backfill run to start", interval=5)
    stack.compose_run("restart", "postgresql", timeout=180)
    wait_until(lambda: _healthy(stack, "postgresql"), 120, "PostgreSQL healthy again", interval=3)
    stack.compose_run("restart", "daemon", timeout=180)
    for day in BACKFILL_DAYS:
        wait_until(lambda day=day: day_succeeded(stack, day), RUN_WAIT, f"{day} to succeed",
                   interval=10)  # fmt: skip
        # Every row of the day accounted for across the restarts: validated or quarantined,
        # and every validated row scored.
        rows = {
            asset: _row_count(stack, asset, day)
            for asset in (
                "raw_transactions", "validated_transactions", "quarantined_transactions",
                "batch_scores",
            )
        }  # fmt: skip
        assert rows["raw_transactions"] == (
            rows["validated_transactions"] + rows["quarantined_transactions"]
        ), rows
        assert rows["batch_scores"] == rows["validated_transactions"] > 0, rows
    wait_until(
        lambda: not claimed_slots(stack, BACKFILL_DAYS), 120, "every pool slot free", interval=3
    )
    ours = [run["runId"] for day in BACKFILL_DAYS for run in runs_of_day(stack, day)]
    running = [
        container
        for run_id in ours
        for container in stack.run_containers(run_id)
        if stack.inspect(container)["State"]["Running"]
    ]
    assert not running, f"run containers ({RUN_LABEL}) of finished runs still running"


def _healthy(stack: Stack, service: str) -> bool:
    state = stack.inspect(stack.container(service))["State"]
    return state.get("Health", {}).get("Status") == "healthy"


def _row_count(stack: Stack, asset: str, day: str) -> int:
    """The day's rows in the newest materialization of `asset` (its own day's rows where the
    asset also carries rows of other days on their way to quarantine)."""
    found = materializations(stack, asset, day)
    assert found, f"{asset} has no materialization of {day}"
    newest = max(found, key=lambda each: float(each["timestamp"]))
    metadata = {entry["label"]: entry.get("intValue") for entry in newest["metadataEntries"]}
    count = metadata.get("rows_of_the_day")
    return int(count if count is not None else metadata["dagster/row_count"])
