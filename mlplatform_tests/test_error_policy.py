"""The error policy classifies by cause: content, settings and programming errors fail fast; a
network, a busy service, a timed-out remote call or a full disk go to the stage's retry policy.

The errors are real ones, raised by the code that raises them in production wherever that runs
here (a corrupt gzip, a closed port, a local HTTP server answering 503, SQLite)."""

import errno
import gzip
import json
import socket
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import dagster as dg
import pytest

from mlplatform.config.loading import SettingsError
from mlplatform.config.orchestration import load_error_handling
from mlplatform.core.contract import ContractError, load_contract
from mlplatform.core.source_files import SourceError
from mlplatform.core.validate import DatasetError
from mlplatform.stages import carried_out, optional_work, retry_policy
from mlplatform.stages.error_policy import StepTimeLimitExceeded, is_retried, rule_for


def raised(action) -> BaseException:
    try:
        action()
    except BaseException as error:
        return error
    raise AssertionError("expected an error")


# Real errors from real calls ----------------------------------------------------------------------


class _Answers(BaseHTTPRequestHandler):
    """Answers GET /<status> with that status; 404 with MLflow's JSON error body."""

    def do_GET(self) -> None:
        segment = self.path.strip("/").split("/")[0]
        status = int(segment) if segment.isdigit() else 503
        body = (
            json.dumps({"error_code": "RESOURCE_DOES_NOT_EXIST", "message": "no such model"})
            if status == 404
            else "busy"
        ).encode()
        self.send_response(status)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    do_POST = do_GET

    def log_message(self, *args: object) -> None:
        pass


@pytest.fixture(scope="module")
def http_server() -> Iterator[str]:
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Answers)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()


def closed_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def silent_server_read() -> None:
    """Reads from a server that accepts and never answers (socket.timeout)."""
    with (
        socket.create_server(("127.0.0.1", 0)) as server,
        socket.create_connection(server.getsockname(), timeout=0.05) as client,
    ):
        client.recv(1)


def mlflow_error(uri: str) -> BaseException:
    import mlflow

    return raised(lambda: mlflow.MlflowClient(uri).search_experiments())


def test_content_settings_and_programming_errors_fail_fast(tmp_path, http_server):
    import pydantic
    import requests
    from mlflow.exceptions import MlflowException
    from mlflow.protos.databricks_pb2 import INVALID_PARAMETER_VALUE

    from mlplatform.config.settings import load_settings

    not_gzip = tmp_path / "day.csv.gz"
    not_gzip.write_bytes(b"id,amount\n1,2\n")
    a_file = tmp_path / "a_file"
    a_file.write_text("")
    broken_contract = tmp_path / "contract.yaml"
    broken_contract.write_text("name: [")

    class Bounded(pydantic.BaseModel):
        rate: float = pydantic.Field(le=1)

    errors = {
        "corrupt gzip": raised(lambda: gzip.decompress(not_gzip.read_bytes())),
        "a data folder that is a file": raised((a_file / "day.csv").read_text),
        "a missing file": raised((tmp_path / "missing.csv").read_text),
        "a folder read as a file": raised(tmp_path.read_text),
        "no permission": PermissionError(errno.EACCES, "Permission denied", "/data/day.csv"),
        "text that is not UTF-8": raised(lambda: b"\xff\xfe\xfa".decode("utf-8")),
        "a plain OSError without errno": OSError("cannot tell the file format"),
        "bad rows": DatasetError("day.csv line 7: amount 'abc' is not a number"),
        "bad contract": raised(lambda: load_contract(broken_contract)),
        "bad settings": raised(
            lambda: load_settings(environ={"MLPLATFORM_DATASET": "nope"}, root=tmp_path)
        ),
        "invalid value": raised(lambda: Bounded(rate=2)),
        "KeyError": raised(lambda: {}["amount"]),
        "TypeError": raised(lambda: len(5)),
        "ValueError": raised(lambda: int("abc")),
        "AttributeError": raised(lambda: None.shape),
        "MLflow: no such model": mlflow_error(f"{http_server}/404"),
        "MLflow: invalid parameter": MlflowException("bad", error_code=INVALID_PARAMETER_VALUE),
        "MLflow: a programming error it wrapped": raised(_mlflow_wrapping_a_key_error),
        "HTTP 404": raised(lambda: requests.get(f"{http_server}/404").raise_for_status()),
        "HTTP 403": raised(lambda: requests.get(f"{http_server}/403").raise_for_status()),
    }
    assert isinstance(errors["corrupt gzip"], gzip.BadGzipFile)
    assert isinstance(errors["a data folder that is a file"], NotADirectoryError)
    assert isinstance(errors["bad contract"], ContractError)
    assert isinstance(errors["bad settings"], SettingsError)
    assert type(errors["MLflow: no such model"]).__name__ == "RestException"
    retried = [name for name, error in errors.items() if is_retried(error)]
    assert retried == []
    # Bad content, contracts and settings are named by a rule; programming errors by none.
    assert rule_for(errors["bad rows"]).action == "fail_fast"
    assert rule_for(errors["corrupt gzip"]).action == "fail_fast"
    assert rule_for(errors["KeyError"]) is None


def _mlflow_wrapping_a_key_error() -> None:
    from mlflow.exceptions import MlflowException

    try:
        {}["run_id"]
    except KeyError as error:
        raise MlflowException(f"failed: {error}") from error


def test_transient_errors_are_retried(tmp_path, http_server, monkeypatch):
    import requests
    import sqlalchemy
    from mlflow.exceptions import MlflowException
    from mlflow.protos.databricks_pb2 import TEMPORARILY_UNAVAILABLE

    # MLflow's client retries for minutes on its own first; the stage's policy is under test.
    monkeypatch.setenv("MLFLOW_HTTP_REQUEST_MAX_RETRIES", "0")
    port = closed_port()
    locked = tmp_path / "locked.db"
    holder = sqlalchemy.create_engine(f"sqlite:///{locked}")
    waiter = sqlalchemy.create_engine(f"sqlite:///{locked}", connect_args={"timeout": 0})
    with holder.begin() as connection:
        connection.exec_driver_sql("CREATE TABLE t (x INTEGER)")
    with holder.connect() as connection:
        connection.exec_driver_sql("BEGIN EXCLUSIVE")
        database_locked = raised(lambda: waiter.connect().exec_driver_sql("SELECT * FROM t"))
        connection.rollback()

    errors = {
        "disk full": OSError(errno.ENOSPC, "No space left on device"),
        "stale NFS handle": OSError(errno.ESTALE, "Stale file handle"),
        "I/O error": OSError(errno.EIO, "Input/output error"),
        "connection refused": raised(lambda: socket.create_connection(("127.0.0.1", port))),
        "connection reset": ConnectionResetError(errno.ECONNRESET, "Connection reset by peer"),
        "socket timeout": raised(silent_server_read),
        "source unreachable": SourceError("s3://bucket/landing: no such file or folder"),
        "requests: connection refused": raised(lambda: requests.get(f"http://127.0.0.1:{port}")),
        "requests: read timeout": requests.exceptions.ReadTimeout("read timed out"),
        "HTTP 503": raised(lambda: requests.get(f"{http_server}/503").raise_for_status()),
        "HTTP 429": raised(lambda: requests.get(f"{http_server}/429").raise_for_status()),
        "MLflow server down": mlflow_error(f"http://127.0.0.1:{port}"),
        "MLflow server busy (503)": mlflow_error(f"{http_server}/503"),
        "MLflow store locked": MlflowException("locked", error_code=TEMPORARILY_UNAVAILABLE),
        "database locked": database_locked,
    }
    assert isinstance(errors["connection refused"], ConnectionRefusedError)
    assert isinstance(errors["MLflow server down"], MlflowException)
    assert isinstance(database_locked, sqlalchemy.exc.OperationalError)
    assert "database is locked" in str(database_locked)
    not_retried = [name for name, error in errors.items() if not is_retried(error)]
    assert not_retried == []


def test_the_step_time_limit_is_no_ordinary_error():
    """It is raised from a signal at any line: code there that handles Exception or OSError (a
    source reader turning OSErrors into a retryable error) must not catch it."""
    limit = StepTimeLimitExceeded("trained_model[2026-03-02]: exceeded its time limit of 1 s")
    assert not isinstance(limit, Exception)
    assert rule_for(limit) is None and not is_retried(limit)


# The packaged policy, as loaded -------------------------------------------------------------------


def write_error_handling(folder, text: str):
    (folder / "error_handling.yaml").write_text(text)
    return {"MLPLATFORM_SETTINGS_DIR": str(folder)}


@pytest.mark.parametrize(
    ("rule", "expected"),
    [
        ("classes: [builtins.OSError]\n    errnos: [ENOSPACE]", "'ENOSPACE' is not an errno name"),
        ("classes: [builtins.OSErorr]", "builtins has no class OSErorr"),
        ("classes: [OSError]", "'OSError' is not a dotted class name"),
        ("classes: [builtins.OSError]\n    retry_after: 5", "rules.0.retry_after: unknown key"),
        ("classes: [requests.HTTPError]\n    http_statuses: [1503]", "rules.0.http_statuses.0"),
        ("classes: [mlflow.MlflowException]\n    error_codes: [busy]", "'busy' is not an MLflow"),
    ],
)
def test_a_bad_rule_is_refused_at_load_naming_file_and_key(tmp_path, rule, expected):
    environ = write_error_handling(
        tmp_path, f"rules:\n  - name: r\n    action: retry\n    {rule}\n"
    )
    with pytest.raises(SettingsError) as refused:
        load_error_handling(environ=environ)
    assert expected in str(refused.value)
    assert str(tmp_path / "error_handling.yaml") in str(refused.value)


def test_a_warn_rule_or_catch_all_is_gone():
    """Nothing is retried for being an Exception: the first version listed builtins.Exception."""
    policy = load_error_handling(environ={})
    assert {rule.action for rule in policy.rules} == {"fail_fast", "retry"}
    for rule in policy.rules:
        if rule.action == "retry":
            assert not {"builtins.Exception", "builtins.BaseException"} & set(rule.classes)
            assert "builtins.OSError" not in rule.classes or rule.errnos


def test_packaged_mlflow_error_codes_are_mlflow_s():
    from mlflow.protos.databricks_pb2 import ErrorCode

    codes = {code for rule in load_error_handling(environ={}).rules for code in rule.error_codes}
    assert codes and codes <= set(ErrorCode.keys())


# In real materializations -------------------------------------------------------------------------


def step_retries(result: dg.ExecuteInProcessResult) -> int:
    return sum(1 for e in result.all_events if e.event_type_value == "STEP_UP_FOR_RETRY")


def failure_of(result: dg.ExecuteInProcessResult):
    return result.get_step_failure_events()[0].step_failure_data.user_failure_data


def materialized(fail) -> dg.ExecuteInProcessResult:
    @dg.asset(retry_policy=retry_policy("validation"))
    def step(context: dg.AssetExecutionContext) -> int:
        with carried_out(context, "validation"):
            fail()
        return 1

    return dg.materialize([step], raise_on_error=False)


def test_content_error_fails_fast_and_transient_one_is_retried(tmp_path):
    from mlplatform.config.active import ORCHESTRATION

    corrupt = tmp_path / "day.csv.gz"
    corrupt.write_bytes(b"not gzip at all")
    content = materialized(lambda: gzip.decompress(corrupt.read_bytes()))
    assert not content.success
    assert step_retries(content) == 0
    assert failure_of(content).metadata["severity"].value == "critical"
    assert failure_of(content).metadata["error_class"].value == "BadGzipFile"

    def disk_full() -> None:
        raise OSError(errno.ENOSPC, "No space left on device", str(tmp_path / "out.parquet"))

    transient = materialized(disk_full)
    assert not transient.success
    assert step_retries(transient) == ORCHESTRATION.retries["validation"].max_retries == 2


def test_an_error_no_rule_names_fails_fast_with_its_class_named():
    result = materialized(lambda: {}["amount"])
    assert step_retries(result) == 0
    failure = failure_of(result)
    assert "step: KeyError: 'amount'" in failure.description
    assert "no rule matches" in failure.metadata["policy"].value


def test_time_limit_fires_through_code_that_handles_oserror():
    """The limit firing inside a reader's `except OSError` (which turns I/O errors into a
    retryable one) still fails the step at once."""
    import time

    @dg.asset(retry_policy=retry_policy("ingestion"))
    def reader(context: dg.AssetExecutionContext) -> int:
        with carried_out(context, "ingestion", time_limit=1):
            try:
                time.sleep(30)
            except OSError as error:
                raise SourceError(f"landing/day.csv: cannot read ({error})") from error
        return 1

    result = dg.materialize([reader], raise_on_error=False)
    assert step_retries(result) == 0
    assert "exceeded its time limit of 1 s" in failure_of(result).description


def test_failure_and_retry_requested_pass_through_unchanged():
    @dg.asset(retry_policy=retry_policy("validation"))
    def gives_up(context: dg.AssetExecutionContext) -> int:
        with carried_out(context, "validation"), optional_work(context, "metadata"):
            raise dg.Failure(description="told to stop", metadata={"why": "test"})
        return 1

    @dg.asset
    def asks_again(context: dg.AssetExecutionContext) -> int:
        with carried_out(context, "validation"):
            raise dg.RetryRequested(max_retries=1, seconds_to_wait=0.1)
        return 1

    stopped = dg.materialize([gives_up], raise_on_error=False)
    assert failure_of(stopped).description == "told to stop"
    # A Failure allows retries unless it says otherwise: the stage's policy applies to it.
    assert step_retries(stopped) == 2
    assert step_retries(dg.materialize([asks_again], raise_on_error=False)) == 1


def test_optional_work_names_what_it_skipped_and_stops_for_bad_data(capsys):
    from mlplatform.assets.common import preview

    @dg.asset(retry_policy=retry_policy("validation"))
    def with_preview(context: dg.AssetExecutionContext) -> dg.MaterializeResult:
        return dg.MaterializeResult(metadata={"preview": preview(context, None)})

    @dg.asset(retry_policy=retry_policy("validation"))
    def bad_data_in_optional_work(context: dg.AssetExecutionContext) -> int:
        with optional_work(context, "extra metadata"):
            raise DatasetError("day.csv line 3: amount 'x' is not a number")
        return 1

    with dg.instance_for_test() as instance:
        result = dg.materialize([with_preview], instance=instance)
        warnings = [
            e.user_message
            for e in instance.all_logs(result.run_id)
            if e.level == 30 and "preview skipped" in e.user_message
        ]
    assert len(warnings) == 1
    assert "AttributeError" in warnings[0] and "common.py" in warnings[0]
    failed = dg.materialize([bad_data_in_optional_work], raise_on_error=False)
    assert step_retries(failed) == 0
    assert "amount 'x' is not a number" in failure_of(failed).description
