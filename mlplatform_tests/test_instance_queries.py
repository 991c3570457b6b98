"""The named queries of mlplatform/instance_queries/, against a real (SQLite, temporary)
Dagster instance holding real runs, materializations, check evaluations and backfills."""

import os
import subprocess
import sys
import time

import dagster as dg
import pytest

from mlplatform import instance_queries as q

DAYS = dg.DailyPartitionsDefinition(start_date="2026-03-01")
BAD_DAY = "2026-03-02"


@dg.asset(partitions_def=DAYS)
def daily(context: dg.AssetExecutionContext) -> dg.MaterializeResult:
    return dg.MaterializeResult(metadata={"day": context.partition_key, "rows": 10})


@dg.asset(partitions_def=DAYS, deps=[daily])
def downstream() -> None:
    return None


@dg.asset_check(asset=daily, blocking=True, partitions_def=DAYS)
def daily_is_good(context: dg.AssetCheckExecutionContext) -> dg.AssetCheckResult:
    return dg.AssetCheckResult(passed=context.partition_key != BAD_DAY)


DEFS = dg.Definitions(assets=[daily, downstream], asset_checks=[daily_is_good])
LOCAL_LAUNCHER = {
    "run_launcher": {"module": "mlplatform.automation.run_launcher", "class": "LocalRunLauncher"}
}


@pytest.fixture
def instance():
    with dg.instance_for_test(overrides=LOCAL_LAUNCHER) as instance:
        yield instance


def materialize(instance: dg.DagsterInstance, day: str, *assets) -> dg.ExecuteInProcessResult:
    return dg.materialize(
        list(assets) or [daily, daily_is_good],
        partition_key=day,
        instance=instance,
        raise_on_error=False,  # a failed blocking check fails the run
    )


def add_run(instance: dg.DagsterInstance, status: dg.DagsterRunStatus, **kwargs) -> dg.DagsterRun:
    run = dg.DagsterRun(job_name="some_job", status=status, **kwargs)
    instance.add_run(run)
    time.sleep(0.01)  # runs created in order
    return run


def report_start(instance: dg.DagsterInstance, run: dg.DagsterRun, pid: int) -> None:
    from dagster._core.events import DagsterEvent, DagsterEventType

    start = DagsterEvent(
        event_type_value=DagsterEventType.RUN_START.value, job_name=run.job_name, pid=pid
    )
    instance.report_dagster_event(start, run.run_id)


def dead_pid() -> int:
    done = subprocess.Popen([sys.executable, "-c", "pass"])
    done.wait()
    return done.pid


def test_tag_and_status_names_are_dagster_s():
    from dagster._core.storage import tags
    from dagster._core.storage.dagster_run import NOT_FINISHED_STATUSES

    assert q.PARTITION_TAG == tags.PARTITION_NAME_TAG
    assert q.PARTITION_RANGE_START_TAG == tags.ASSET_PARTITION_RANGE_START_TAG
    assert q.PARTITION_RANGE_END_TAG == tags.ASSET_PARTITION_RANGE_END_TAG
    assert q.BACKFILL_ID_TAG == tags.BACKFILL_ID_TAG
    assert q.WILL_RETRY_TAG == tags.WILL_RETRY_TAG
    assert q.AUTO_RETRY_RUN_ID_TAG == tags.AUTO_RETRY_RUN_ID_TAG
    assert q.MAX_RETRIES_TAG == tags.MAX_RETRIES_TAG
    assert q.MAX_RUNTIME_TAG == tags.MAX_RUNTIME_SECONDS_TAG
    assert set(q.NOT_FINISHED_STATUSES) == set(NOT_FINISHED_STATUSES)
    assert set(q.LIVE_STATUSES) < set(q.NOT_FINISHED_STATUSES)
    assert set(q.FINISHED_STATUSES) | set(q.NOT_FINISHED_STATUSES) | {
        dg.DagsterRunStatus.MANAGED  # Dagster's, of runs it does not run: never ours
    } == set(dg.DagsterRunStatus)


def test_materializations_by_partition_by_run_and_after_a_cursor(instance):
    first = materialize(instance, "2026-03-01")
    materialize(instance, "2026-03-03")
    again = materialize(instance, "2026-03-03")

    assert q.materialized_partitions(instance, "daily") == {"2026-03-01", "2026-03-03"}
    assert q.materialized_partitions(instance, "daily", ["2026-03-02", "2026-03-03"]) == {
        "2026-03-03"
    }
    assert q.materialized_partitions(instance, "downstream") == set()

    latest = q.latest_materialization(instance, "daily", "2026-03-03")
    assert latest is not None and latest.run_id == again.run_id
    assert q.latest_materialization(instance, "daily").run_id == again.run_id
    assert q.latest_materialization(instance, "daily", "2026-03-02") is None

    of_days = q.materializations_of_partitions(instance, "daily", ["2026-03-01", "2026-03-03"], 10)
    assert [r.partition_key for r in of_days] == ["2026-03-03", "2026-03-03", "2026-03-01"]
    assert len(q.materializations_of_partitions(instance, "daily", ["2026-03-03"], 1)) == 1

    everything = q.materializations_after(instance, "daily", None, 10)
    assert [r.partition_key for r in everything] == ["2026-03-01", "2026-03-03", "2026-03-03"]
    after = q.materializations_after(instance, "daily", everything[0].storage_id, 10)
    assert [r.storage_id for r in after] == [r.storage_id for r in everything[1:]]

    metadata = q.materialization_metadata_of_run(instance, "daily", first.run_id)
    assert metadata == {"day": "2026-03-01", "rows": 10}
    assert q.materialization_metadata_of_run(instance, "daily", "no-such-run") is None

    newest = q.latest_partition_materializations(instance, dg.AssetKey("daily"), 1)
    assert [(r.partition_key, r.run_id) for r in newest] == [("2026-03-03", again.run_id)]
    assert q.latest_partition_materializations(instance, dg.AssetKey("downstream"), 3) == []

    assert dg.AssetKey("daily") in q.asset_keys(instance)
    times = q.last_materialization_times(instance)
    assert times[dg.AssetKey("daily")] == latest.timestamp


def test_check_executions_of_one_partition_newest_first_with_their_outcome(instance):
    for day in ("2026-03-01", BAD_DAY, "2026-03-03", BAD_DAY):
        materialize(instance, day)
    every = q.completed_check_executions(instance, "daily", "daily_is_good")
    assert [r.partition for r in every] == [BAD_DAY, "2026-03-03", BAD_DAY, "2026-03-01"]
    assert [q.check_execution_failed(r) for r in every] == [True, False, True, False]
    assert [q.check_execution_passed(r) for r in every] == [False, True, False, True]

    # Filtered in storage: the newest of one day, however many days came after it.
    (first_day,) = q.completed_check_executions(instance, "daily", "daily_is_good", "2026-03-01", 1)
    assert first_day.partition == "2026-03-01" and q.check_execution_passed(first_day)
    older = q.completed_check_executions(
        instance, dg.AssetKey("daily"), "daily_is_good", limit=2, cursor=every[1].id
    )
    assert [r.id for r in older] == [r.id for r in every[2:]]
    assert q.completed_check_executions(instance, "daily", "no_such_check") == []


def test_a_run_s_plan_events_checks_steps_and_worker(instance):
    result = materialize(instance, BAD_DAY, daily, daily_is_good, downstream)
    run = instance.get_run_by_id(result.run_id)

    steps = q.planned_steps(instance, run)
    assert set(steps) == {"daily", "daily_daily_is_good", "downstream"}
    assert dg.AssetKey("daily") in steps["daily"].entity_keys
    assert q.planned_steps(instance, dg.DagsterRun(job_name="no_plan")) == {}

    last = q.last_step_events(
        instance, run.run_id, [dg.DagsterEventType.STEP_START, dg.DagsterEventType.STEP_SUCCESS]
    )
    # The blocking check failed on this day: downstream did not run.
    assert last == {"daily": "STEP_SUCCESS", "daily_daily_is_good": "STEP_START"}

    assert q.assets_materialized_in_run(instance, run.run_id) == {dg.AssetKey("daily")}
    (evaluation,) = q.check_evaluation_entries(instance, run.run_id)
    assert evaluation.dagster_event.event_specific_data.passed is False
    stats = {s.step_key: s.status.value for s in q.step_stats(instance, run.run_id)}
    assert stats == {"daily": "SUCCESS", "daily_daily_is_good": "FAILURE"}

    worker = q.run_worker(instance, run.run_id)
    assert worker is not None and worker.pid == os.getpid()
    assert q.run_worker(instance, add_run(instance, dg.DagsterRunStatus.NOT_STARTED).run_id) is None


def test_run_status_changes_after_a_cursor_and_a_run_s_events_of_one_type(instance):
    failure, success = dg.DagsterEventType.RUN_FAILURE, dg.DagsterEventType.RUN_SUCCESS
    assert q.newest_run_status_change_id(instance, [failure, success]) == 0
    good = materialize(instance, "2026-03-01")
    bad = materialize(instance, BAD_DAY)

    failures = q.run_status_changes_after(instance, failure, 0, 10)
    assert [record.run_id for record in failures] == [bad.run_id]
    successes = q.run_status_changes_after(instance, success, 0, 10)
    assert [record.run_id for record in successes] == [good.run_id]
    newest = q.newest_run_status_change_id(instance, [failure, success])
    assert newest == failures[0].storage_id > successes[0].storage_id
    assert q.run_status_changes_after(instance, success, successes[0].storage_id, 10) == []

    found = q.runs_by_id(instance, [good.run_id, bad.run_id, "no-such-run"])
    assert set(found) == {good.run_id, bad.run_id}
    assert found[bad.run_id].status == dg.DagsterRunStatus.FAILURE
    assert q.runs_by_id(instance, []) == {}

    (step_failure,) = q.run_events(instance, bad.run_id, dg.DagsterEventType.STEP_FAILURE)
    assert step_failure.step_key == "daily_daily_is_good"
    assert q.run_events(instance, good.run_id, dg.DagsterEventType.STEP_FAILURE) == []
    last = q.last_run_event_record(instance, bad.run_id, failure)
    # The run's own log numbers its events apart from the index (SQLite): the same event, by time.
    assert last is not None and last.timestamp == failures[0].timestamp
    assert q.last_run_event_record(instance, good.run_id, failure) is None


def test_runs_by_status_time_job_and_tag(instance):
    queued = add_run(instance, dg.DagsterRunStatus.NOT_STARTED)
    started = add_run(instance, dg.DagsterRunStatus.STARTED, tags={q.PARTITION_TAG: "2026-03-01"})
    middle = time.time()
    time.sleep(0.01)
    canceling = add_run(instance, dg.DagsterRunStatus.CANCELING)
    succeeded = add_run(instance, dg.DagsterRunStatus.SUCCESS, tags={"mine": "yes"})
    failed = add_run(instance, dg.DagsterRunStatus.FAILURE)

    ids = [run.run_id for run in q.unfinished_runs(instance)]
    assert ids == [canceling.run_id, started.run_id, queued.run_id]
    assert [r.dagster_run.run_id for r in q.live_run_records(instance)] == [
        canceling.run_id,
        started.run_id,
    ]
    assert [r.dagster_run.run_id for r in q.live_run_records(instance, "2026-03-01")] == [
        started.run_id
    ]
    assert q.live_run_records(instance, "2026-03-02") == []

    created = q.run_records_created_since(instance, middle)
    assert {r.dagster_run.run_id for r in created} == {
        canceling.run_id,
        succeeded.run_id,
        failed.run_id,
    }
    assert len(q.run_records_created_since(instance)) == 5
    assert q.run_records_created_since(instance, None, job="other_job") == []
    # The run storage keeps when a run's record changed to the second.
    assert len(q.run_records_updated_since(instance, time.time() - 60)) == 5
    assert q.run_records_updated_since(instance, time.time() + 60) == []
    finished = q.run_records_with_statuses(instance, ["SUCCESS", "FAILURE"])
    assert {r.dagster_run.run_id for r in finished} == {succeeded.run_id, failed.run_id}
    assert q.run_count(instance, "some_job", "FAILURE") == 1
    assert q.run_count(instance, "other_job", "FAILURE") == 0

    assert q.newest_finished_run_record(instance, "some_job").dagster_run.run_id == failed.run_id
    assert q.newest_finished_run_record(instance, "other_job") is None
    assert q.job_has_runs(instance, "some_job")
    assert not q.job_has_runs(instance, "other_job")

    assert q.run_tagged(instance, {"mine": "yes"}).run_id == succeeded.run_id
    assert q.run_tagged(instance, {"mine": "no"}) is None


def test_failed_runs_waiting_for_retry_and_run_groups(instance):
    waiting = add_run(instance, dg.DagsterRunStatus.FAILURE, tags={q.WILL_RETRY_TAG: "true"})
    add_run(
        instance,
        dg.DagsterRunStatus.FAILURE,
        tags={q.WILL_RETRY_TAG: "true", q.AUTO_RETRY_RUN_ID_TAG: "its-retry"},
    )
    add_run(instance, dg.DagsterRunStatus.FAILURE, tags={q.WILL_RETRY_TAG: "false"})
    add_run(instance, dg.DagsterRunStatus.FAILURE)

    assert [r.dagster_run.run_id for r in q.runs_waiting_for_retry(instance, 100)] == [
        waiting.run_id
    ]
    assert q.runs_waiting_for_retry(instance, 100, updated_after=time.time() + 60) == []

    retry = add_run(
        instance,
        dg.DagsterRunStatus.NOT_STARTED,
        parent_run_id=waiting.run_id,
        root_run_id=waiting.run_id,
        # As Dagster tags a re-execution: its run group is read from these.
        tags={"dagster/parent_run_id": waiting.run_id, "dagster/root_run_id": waiting.run_id},
    )
    group = q.run_group(instance, waiting.run_id)
    assert {run.run_id for run in group} == {waiting.run_id, retry.run_id}
    assert q.run_group(instance, "no-such-run") == []


def test_the_earlier_live_run_of_a_partition_unless_its_worker_is_gone(instance):
    day = {q.PARTITION_TAG: "2026-03-01"}
    dead = add_run(instance, dg.DagsterRunStatus.STARTED, tags=day)
    report_start(instance, dead, dead_pid())
    alive = add_run(instance, dg.DagsterRunStatus.STARTED, tags=day)
    report_start(instance, alive, os.getpid())
    starting = add_run(instance, dg.DagsterRunStatus.STARTING, tags=day)

    assert q.worker_known_dead(instance, dead)
    assert not q.worker_known_dead(instance, alive)
    assert not q.worker_known_dead(instance, starting)  # not STARTED: its status is trusted
    gone = q.runs_with_dead_workers(instance)
    assert [run.run_id for run, _ in gone] == [dead.run_id]
    assert gone[0][1].status == q.WorkerStatus.FAILED and "is gone" in gone[0][1].msg

    # The first run's worker is gone: the one after it comes first.
    assert q.earlier_live_run_of_partition(instance, dead) is None
    assert q.earlier_live_run_of_partition(instance, alive) is None
    assert q.earlier_live_run_of_partition(instance, starting).run_id == alive.run_id
    assert q.earlier_live_run_of_partition(instance, dg.DagsterRun(job_name="no_day")) is None

    # Runs of other assets of the same day do not stand in each other's way.
    other_day = {q.PARTITION_TAG: "2026-03-02"}
    of_daily = add_run(
        instance,
        dg.DagsterRunStatus.STARTED,
        tags=other_day,
        asset_selection=frozenset({dg.AssetKey("daily")}),
    )
    elsewhere = add_run(
        instance,
        dg.DagsterRunStatus.STARTED,
        tags=other_day,
        asset_selection=frozenset({dg.AssetKey("elsewhere")}),
    )
    overlapping = add_run(
        instance,
        dg.DagsterRunStatus.STARTED,
        tags=other_day,
        asset_selection=frozenset({dg.AssetKey("daily"), dg.AssetKey("downstream")}),
    )
    assert q.earlier_live_run_of_partition(instance, of_daily) is None
    assert q.earlier_live_run_of_partition(instance, elsewhere) is None
    assert q.earlier_live_run_of_partition(instance, overlapping).run_id == of_daily.run_id


def test_dead_workers_need_a_launcher_that_can_tell():
    with dg.instance_for_test() as instance:  # Dagster's own launcher checks no worker
        started = add_run(instance, dg.DagsterRunStatus.STARTED)
        assert not q.worker_known_dead(instance, started)
        with pytest.raises(q.WorkerHealthUnknown, match="cannot tell whether a run's worker"):
            q.runs_with_dead_workers(instance)


def test_backfills_in_progress_their_status_runs_and_days_to_come(instance):
    from dagster._core.execution.backfill import BulkActionStatus, PartitionBackfill

    asset_graph = DEFS.resolve_asset_graph()
    backfill = PartitionBackfill.from_asset_partitions(
        backfill_id="bf1",
        asset_graph=asset_graph,
        partition_names=["2026-03-01", "2026-03-02"],
        asset_selection=[dg.AssetKey("daily")],
        backfill_timestamp=time.time(),
        tags={},
        dynamic_partitions_store=instance,
        all_partitions=False,
        title=None,
        description=None,
        run_config=None,
    )
    instance.add_backfill(backfill)

    assert [b.backfill_id for b in q.requested_backfills(instance)] == ["bf1"]
    assert q.backfill_status(instance, "bf1") == "REQUESTED"
    assert q.backfill_status(instance, "no-such-backfill") is None
    days = ["2026-03-01", "2026-03-02", "2026-03-03"]
    (requested,) = q.requested_backfills(instance)
    assert q.asset_backfill_partitions_to_come(
        requested, asset_graph, dg.AssetKey("daily"), days
    ) == ["2026-03-01", "2026-03-02"]
    assert (
        q.asset_backfill_partitions_to_come(requested, asset_graph, dg.AssetKey("downstream"), days)
        == []
    )

    assert not q.backfill_has_run_of_partition(instance, "bf1", "2026-03-01")
    add_run(
        instance,
        dg.DagsterRunStatus.SUCCESS,
        tags={q.BACKFILL_ID_TAG: "bf1", q.PARTITION_TAG: "2026-03-01"},
    )
    assert q.backfill_has_run_of_partition(instance, "bf1", "2026-03-01")
    assert not q.backfill_has_run_of_partition(instance, "bf1", "2026-03-02")

    instance.update_backfill(backfill.with_status(BulkActionStatus.COMPLETED_SUCCESS))
    assert q.requested_backfills(instance) == []
    assert q.backfill_status(instance, "bf1") == "COMPLETED_SUCCESS"
