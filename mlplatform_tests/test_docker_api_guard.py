"""The Docker API guard (mlplatform.deployment.docker_api_guard, issue 25.2): its policy on the
calls dagster-docker makes and on every forbidden one, and the guard itself in front of the real
Docker engine, for the daemon (`launcher`) and the webserver (`stopper`).

The launcher's create body shown allowed is the one docker-py builds for the DockerRunLauncher
configured as in docker/dagster.yaml (captured before it leaves, mlplatform_tests/docker_guard.py),
not a hand-written copy; each forbidden body is a minimal allowed one with one thing changed."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from typing import Any

import docker.errors
import pytest

from mlplatform.deployment.docker_api_policy import Looked, Rules, decide
from mlplatform.deployment.docker_create_body import Refused, parse_json
from mlplatform_tests.docker_guard import (
    ENGINE_IMAGE,
    RUN,
    SLEEPER,
    VOLUME,
    Engine,
    dagster_launcher,
    docker_py_request,
    guarded_engine,
    launcher_env,
    refused,
)

IMAGE = "mlplatform:latest"
NETWORK = "mlplatform-network"
LAUNCHER = Rules("launcher", frozenset({IMAGE}), frozenset({NETWORK}), frozenset({VOLUME}))
STOPPER = Rules("stopper")


# The run containers' limits, as the code location's --container-context gives them.
RUN_LIMITS = {"mem_limit": "8g", "nano_cpus": 2_000_000_000}


def launcher_create_request(monkeypatch, **limits: object) -> tuple[str, str, str, bytes]:
    launcher_env(monkeypatch)
    monkeypatch.setenv("DOCKER_HOST", "tcp://127.0.0.1:9")
    launcher, instance = dagster_launcher(NETWORK, VOLUME, {}, **limits)
    command = ["dagster", "api", "execute_run", '{"run_id": "x"}']
    return docker_py_request(
        lambda: launcher._launch_container_with_command(instance.run, IMAGE, command)
    )


# --- The policy -------------------------------------------------------------------------------


def containers(**by_name: dict[str, Any]) -> Callable[[str], Looked]:
    """A lookup over made-up containers: name -> attributes."""

    def lookup(name: str) -> Looked:
        if name in by_name:
            return Looked(200, by_name[name])
        return Looked(404, None, f"No such container: {name}")

    return lookup


def attrs(labels: dict[str, str], cid: str = "a" * 64) -> dict[str, Any]:
    return {
        "Id": cid,
        "Name": "/x",
        "Image": "sha256:" + "b" * 64,
        "State": {"Status": "running", "Running": True, "Health": {"Status": "ok", "Log": ["pw"]}},
        "Config": {"Image": IMAGE, "Labels": labels, "Env": ["PASSWORD=hunter2"], "Cmd": ["x"]},
        "HostConfig": {"Binds": ["mlplatform-data:/data"]},
        "Mounts": [],
        "Args": ["--password", "hunter2"],
    }


LOOKUP = containers(run=attrs(RUN), other=attrs({"com.docker.compose.service": "postgresql"}))


def create(body: Any, rules: Rules = LAUNCHER) -> Any:
    raw = body if isinstance(body, bytes) else json.dumps(body).encode()
    return decide(rules, "POST", "/v1.41/containers/create", "", raw, LOOKUP)


def run_body(**host: Any) -> dict[str, Any]:
    """A minimal allowed create body, with HostConfig additions."""
    return {
        "Image": IMAGE,
        "Cmd": ["dagster", "api", "execute_run"],
        "Env": ["A=b"],
        "Labels": dict(RUN),
        "HostConfig": {"NetworkMode": NETWORK, "Binds": [f"{VOLUME}:/data"], **host},
    }


@pytest.mark.parametrize("limits", [{}, RUN_LIMITS], ids=["dagster.yaml", "with limits"])
def test_the_run_launchers_create_is_allowed_and_reserialised(monkeypatch, limits):
    method, path, query, body = launcher_create_request(monkeypatch, **limits)
    assert (method, path) == ("POST", "/v1.41/containers/create")
    sent = json.loads(body)
    # docker/dagster.yaml's container_kwargs: the data volume, no capability, no privilege gain.
    host = {
        "NetworkMode": NETWORK,
        "Binds": ["mlplatform-data:/data"],
        "CapDrop": ["ALL"],
        "SecurityOpt": ["no-new-privileges:true"],
    }
    if limits:
        host.update(Memory=8 * 2**30, NanoCpus=2_000_000_000)
    assert sent["HostConfig"] == host
    assert sent["Labels"]["com.mlplatform.role"] == "run"
    decision = decide(LAUNCHER, method, path, query, body, LOOKUP)
    assert decision.allowed, decision.reason
    assert decision.target == "/v1.41/containers/create"
    forwarded = json.loads(decision.body)
    # docker-py's {"<network>": null} NetworkingConfig is a no-op for the engine: left out.
    assert forwarded == {key: value for key, value in sent.items() if key != "NetworkingConfig"}
    assert decision.body != body  # re-serialised, not the bytes received


def test_a_step_container_of_the_docker_executor_is_allowed():
    """The executor's create: a name, the launcher's kwargs and the step's resource limits."""
    from mlplatform.automation.execution import docker_executor_config
    from mlplatform.config.active import ORCHESTRATION

    limits = docker_executor_config(ORCHESTRATION.execution)["container_kwargs"]
    client = docker.DockerClient(base_url="tcp://127.0.0.1:9", version="1.41")
    request = docker_py_request(
        lambda: client.containers.create(
            IMAGE, name="dagster-step-0a1b2c", detach=True, network=NETWORK,
            command=["dagster", "api", "execute_step"], environment={"A": "b"},
            volumes=[f"{VOLUME}:/data"], labels=dict(RUN), **limits,
        )
    )  # fmt: skip
    decision = decide(LAUNCHER, *request, LOOKUP)
    assert decision.allowed, decision.reason
    assert decision.target == "/v1.41/containers/create?name=dagster-step-0a1b2c"
    host = json.loads(decision.body)["HostConfig"]
    assert host["Memory"] == limits["mem_limit"] and host["NanoCpus"] == limits["nano_cpus"]


@pytest.mark.parametrize(
    ("body", "reason"),
    [
        (run_body(Privileged=True), "privileged"),
        (run_body(CapAdd=["SYS_ADMIN"]), "'CapAdd' is not allowed"),
        (run_body(Binds=["/:/host"]), "not a mount of an allowed named volume"),
        (run_body(Binds=["/var/run/docker.sock:/var/run/docker.sock"]), "named volume"),
        (run_body(Binds=["other-volume:/data"]), "named volume"),
        (run_body(Binds=[f"{VOLUME}:/data:rshared"]), "bind options"),
        (run_body(Mounts=[{"Type": "bind", "Source": "/", "Target": "/host"}]), "type 'bind'"),
        (
            run_body(Mounts=[{"Type": "volume", "Source": VOLUME, "Target": "/x", "VolumeOptions": {
                "DriverConfig": {"Name": "local", "Options": {"o": "bind", "device": "/"}}}}]),
            "no driver options",
        ),
        (run_body(Devices=[{"PathOnHost": "/dev/sda", "PathInContainer": "/dev/sda"}]), "Devices"),
        (run_body(PidMode="host"), "'PidMode' is not allowed"),
        (run_body(IpcMode="host"), "'IpcMode' is not allowed"),
        (run_body(UsernsMode="host"), "'UsernsMode' is not allowed"),
        (run_body(NetworkMode="host"), "NetworkMode 'host'"),
        (run_body(NetworkMode="container:" + "a" * 64), "NetworkMode"),
        (run_body(SecurityOpt=["seccomp=unconfined"]), "no-new-privileges"),
        (run_body(SecurityOpt=["apparmor=unconfined"]), "no-new-privileges"),
        (run_body(Runtime="runc"), "'Runtime'"),
        (run_body(LogConfig={"Type": "syslog"}), "'LogConfig'"),
        ({**run_body(), "Image": "mlplatform-local/debian:bookworm"}, "image"),
        ({**run_body(), "Image": ["mlplatform:latest"]}, "image"),
        ({**run_body(), "Labels": {}}, "com.mlplatform.role=run"),
        ({**run_body(), "Labels": {"com.mlplatform.role": "runner"}}, "com.mlplatform.role=run"),
        ({**run_body(), "Entrypoint": ["/bin/sh"]}, "'Entrypoint' is not allowed"),
        ({**run_body(), "User": "0"}, "'User'"),
        # Docker 20.10 reads HostConfig's fields at the top level too (a deprecated embedding).
        ({**run_body(), "Privileged": True}, "'Privileged' is not allowed in the create body"),
        ({**run_body(), "Binds": ["/:/host"]}, "'Binds' is not allowed in the create body"),
        ({**run_body(), "Volumes": {"/host": {}}}, "Volumes"),
        ({**run_body(), "NetworkingConfig": {"EndpointsConfig": {"bridge": {}}}}, "network"),
        ({k: v for k, v in run_body().items() if k != "HostConfig"}, "HostConfig"),
        ([run_body()], "JSON object"),
    ],
)  # fmt: skip
def test_each_forbidden_create_is_refused(body, reason):
    assert create(run_body()).allowed
    decision = create(body)
    assert not decision.allowed and decision.status == 403
    assert reason in decision.reason


@pytest.mark.parametrize(
    "raw",
    [
        # Go matches keys without case and keeps the last: this would be a privileged container.
        b'{"Image": "mlplatform:latest", "Labels": {"com.mlplatform.role": "run"}, '
        b'"HostConfig": {"NetworkMode": "mlplatform-network", "Privileged": false, '
        b'"privileged": true}}',
        b'{"Image": "mlplatform:latest", "Labels": {"com.mlplatform.role": "run"}, '
        b'"HostConfig": {"NetworkMode": "mlplatform-network"}, '
        b'"hostconfig": {"Privileged": true}}',
        # Exact duplicates: Python and Go both keep the last, but nothing sends two.
        b'{"Image": "mlplatform:latest", "Image": "evil:latest"}',
        # An escaped name is the name: \u0050rivileged is Privileged.
        b'{"Image": "mlplatform:latest", "Labels": {"com.mlplatform.role": "run"}, '
        b'"HostConfig": {"NetworkMode": "mlplatform-network", "\\u0050rivileged": true}}',
        # Unicode folding: Go reads "Bind\\u017f" (a long s) as Binds.
        b'{"Image": "mlplatform:latest", "Labels": {"com.mlplatform.role": "run"}, '
        b'"HostConfig": {"NetworkMode": "mlplatform-network", "Bind\\u017f": ["/:/host"]}}',
        b'{"Image": "mlplatform:latest", "HostConfig": {"CpuQuota": NaN}}',
        b"\xff\xfe{}",
        b'{"Image": "mlplatform:latest"} trailing',
        b"[" * 100000 + b"]" * 100000,
    ],
)
def test_bodies_the_engine_could_read_otherwise_are_refused(raw):
    decision = create(raw)
    assert not decision.allowed and decision.status == 403, decision.reason


def test_keys_equal_without_case_are_refused_while_parsing():
    with pytest.raises(Refused, match="appears twice"):
        parse_json(b'{"a": {"Privileged": false, "PRIVILEGED": true}}')
    assert parse_json(b'{"\\u0050rivileged": true}') == {"Privileged": True}


@pytest.mark.parametrize(
    ("method", "path", "query", "body"),
    [
        ("POST", "/v1.41/containers/run/exec", "", b'{"Cmd": ["sh"]}'),
        ("POST", "/v1.41/exec/abc/start", "", b"{}"),
        ("GET", "/v1.41/containers/run/archive", "path=/etc", b""),
        ("PUT", "/v1.41/containers/run/archive", "path=/", b""),
        ("HEAD", "/v1.41/containers/run/archive", "path=/", b""),
        ("GET", "/v1.41/containers/run/export", "", b""),
        ("GET", "/v1.41/containers/run/logs", "stdout=1", b""),
        ("POST", "/v1.41/containers/run/attach", "stream=1", b""),
        ("GET", "/v1.41/containers/run/top", "", b""),
        ("GET", "/v1.41/containers/run/changes", "", b""),
        ("POST", "/v1.41/containers/run/kill", "", b""),
        ("POST", "/v1.41/containers/run/update", "", b'{"Memory": 0}'),
        ("POST", "/v1.41/containers/run/rename", "name=x", b""),
        ("POST", "/v1.41/containers/run/restart", "", b""),
        ("DELETE", "/v1.41/containers/run", "force=1", b""),
        ("POST", "/v1.41/commit", "container=run", b""),
        ("GET", "/v1.41/containers/json", "all=1", b""),
        ("GET", "/v1.41/images/json", "", b""),
        ("POST", "/v1.41/images/create", "fromImage=alpine", b""),
        ("POST", "/v1.41/build", "", b""),
        ("GET", "/v1.41/volumes", "", b""),
        ("POST", "/v1.41/volumes/create", "", b'{"Name": "x"}'),
        ("POST", "/v1.41/networks/create", "", b'{"Name": "x"}'),
        ("POST", "/v1.41/networks/mlplatform-network/connect", "", b'{"Container": "run"}'),
        ("GET", "/v1.41/info", "", b""),
        ("GET", "/v1.41/events", "", b""),
        ("POST", "/v1.41/swarm/init", "", b"{}"),
        ("GET", "/v1.41/secrets", "", b""),
        ("POST", "/v1.41/plugins/pull", "remote=x", b""),
        ("POST", "/v1.41/session", "", b""),
        ("GET", "/v1.41/containers/run/../../images/json", "", b""),
        ("GET", "/v1.41/containers/run%2F..%2F/json", "", b""),
        ("GET", "/v1.41//containers/run/json", "", b""),
        # Before API 1.24 the engine takes a HostConfig in the start body.
        ("POST", "/v1.23/containers/run/start", "", b'{"Privileged": true}'),
        ("POST", "/v1.41/containers/run/start", "", b'{"Privileged": true}'),
        ("POST", "/v1.41/containers/run/stop", "signal=SIGKILL", b""),
        ("POST", "/v1.41/containers/run/stop", "t=5&t=6", b""),
        ("POST", "/v1.41/containers/create", "platform=linux/arm64", b"{}"),
        ("POST", "/v1.41/containers/create", "name=../x", b"{}"),
    ],
)
def test_each_forbidden_path_is_refused_by_both_profiles(method, path, query, body):
    for rules in (LAUNCHER, STOPPER):
        decision = decide(rules, method, path, query, body, LOOKUP)
        assert not decision.allowed and decision.status == 403, (rules.profile, path)


@pytest.mark.parametrize("rules", [LAUNCHER, STOPPER], ids=["launcher", "stopper"])
def test_a_container_that_is_not_a_run_is_out_of_reach(rules):
    for method, action in (("GET", "json"), ("POST", "stop"), ("POST", "start"), ("POST", "wait")):
        decision = decide(rules, method, f"/v1.41/containers/other/{action}", "", b"", LOOKUP)
        assert not decision.allowed and decision.status == 403, action
    missing = decide(rules, "GET", "/v1.41/containers/gone/json", "", b"", LOOKUP)
    assert (missing.allowed, missing.status) == (False, 404)
    assert missing.reason == "No such container: gone"


@pytest.mark.parametrize("rules", [LAUNCHER, STOPPER], ids=["launcher", "stopper"])
def test_inspect_shows_no_environment(rules):
    decision = decide(rules, "GET", "/v1.41/containers/run/json", "", b"", LOOKUP)
    assert decision.allowed and decision.answer is not None
    seen = json.dumps(decision.answer)
    assert "hunter2" not in seen and "Env" not in seen and "Cmd" not in seen and "pw" not in seen
    assert decision.answer["State"]["Status"] == "running"
    assert decision.answer["Config"]["Labels"] == RUN


def test_the_stopper_stops_runs_and_nothing_else():
    assert not create(run_body(), STOPPER).allowed
    stop = decide(STOPPER, "POST", "/v1.41/containers/run/stop", "t=60", b"", LOOKUP)
    assert stop.allowed and stop.target == f"/v1.41/containers/{'a' * 64}/stop?t=60"
    for call in (("POST", "/v1.41/containers/run/start"), ("POST", "/v1.41/containers/run/wait")):
        assert not decide(STOPPER, *call, "", b"", LOOKUP).allowed
    assert decide(STOPPER, "GET", "/version", "", b"", LOOKUP).target == "/version"
    assert decide(STOPPER, "HEAD", "/_ping", "", b"", LOOKUP).target == "/_ping"


def test_the_launcher_acts_on_the_looked_up_id_not_the_name_given():
    for action in ("start", "stop", "wait"):
        decision = decide(LAUNCHER, "POST", f"/v1.41/containers/run/{action}", "", b"", LOOKUP)
        assert decision.allowed and decision.target == f"/v1.41/containers/{'a' * 64}/{action}"


def test_rules_come_from_the_environment():
    rules = Rules.from_environ(
        "launcher",
        {"DOCKER_GUARD_IMAGES": "mlplatform:latest, mlplatform:1.2",
         "DOCKER_GUARD_NETWORKS": NETWORK, "DOCKER_GUARD_VOLUMES": VOLUME},
    )  # fmt: skip
    assert rules.images == {"mlplatform:latest", "mlplatform:1.2"}
    assert rules.run_label == ("com.mlplatform.role", "run")
    with pytest.raises(ValueError, match="images and networks"):
        Rules.from_environ("launcher", {})
    assert Rules.from_environ("stopper", {}).profile == "stopper"


# --- The guard in front of the real engine ----------------------------------------------------


@pytest.fixture(scope="module")
def engine(tmp_path_factory) -> Iterator[Engine]:
    with guarded_engine(tmp_path_factory.mktemp("guard")) as started:
        yield started


@pytest.mark.slow
def test_a_run_launched_by_dagster_goes_through_the_launcher_guard(engine, monkeypatch):
    from dagster._core.launcher.base import WorkerStatus

    launcher_env(monkeypatch)
    monkeypatch.setenv("DOCKER_HOST", f"tcp://127.0.0.1:{engine.ports['launcher']}")
    launcher, instance = dagster_launcher(
        engine.network, engine.volume, engine.label, 5, mem_limit="256m", nano_cpus=500_000_000
    )
    launcher._launch_container_with_command(instance.run, ENGINE_IMAGE, SLEEPER)

    container_id = instance.tags["docker/container_id"]
    seen = engine.client.containers.get(container_id)
    assert seen.status == "running"
    host = seen.attrs["HostConfig"]
    assert host["Privileged"] is False and host["NetworkMode"] == engine.network
    assert host["Binds"] == [f"{engine.volume}:/data"] and not host["CapAdd"]
    assert (host["Memory"], host["NanoCpus"]) == (256 * 2**20, 500_000_000)
    assert seen.labels["com.mlplatform.role"] == "run"
    assert "DAGSTER_RUN_JOB_NAME=daily_training" in seen.attrs["Config"]["Env"]
    run = instance.run_with_tags()
    assert launcher.check_run_worker_health(run).status == WorkerStatus.RUNNING

    guarded = engine.through("launcher").containers.get(container_id)
    assert guarded.status == "running" and "Env" not in guarded.attrs["Config"]
    assert "stand-in-" not in json.dumps(guarded.attrs)

    assert launcher.terminate(run.run_id)
    assert engine.client.containers.get(container_id).status == "exited"
    assert launcher.check_run_worker_health(run).status == WorkerStatus.FAILED
    # The docker executor's step health check waits for the exit code (a streamed answer).
    assert guarded.wait(timeout=30)["StatusCode"] == 0


@pytest.mark.slow
def test_the_launcher_guard_refuses_each_forbidden_call(engine):
    from docker.types import Mount

    client = engine.through("launcher")
    run_kwargs = {
        "network": engine.network, "labels": {**RUN, **engine.label},
        "volumes": [f"{engine.volume}:/data"],
    }  # fmt: skip
    run = client.containers.create(ENGINE_IMAGE, SLEEPER, name=f"{engine.prefix}-run", **run_kwargs)
    assert run.status == "created"
    creates = {
        "privileged": {**run_kwargs, "privileged": True},
        "host bind": {**run_kwargs, "volumes": ["/:/host"]},
        "bind mount": {**run_kwargs, "mounts": [Mount("/host", "/", type="bind")]},
        "capability": {**run_kwargs, "cap_add": ["SYS_ADMIN"]},
        "device": {**run_kwargs, "devices": ["/dev/sda:/dev/sda"]},
        "host pid": {**run_kwargs, "pid_mode": "host"},
        "host network": {**run_kwargs, "network": None, "network_mode": "host"},
        "no run label": {**run_kwargs, "labels": engine.label},
    }
    for what, kwargs in creates.items():
        name = f"{engine.prefix}-{what.replace(' ', '-')}"
        assert refused(lambda kw=kwargs, n=name: client.containers.create(
            ENGINE_IMAGE, SLEEPER, name=n, **kw))  # fmt: skip
    assert refused(lambda: client.containers.create("busybox:latest", SLEEPER, **run_kwargs))

    assert refused(lambda: run.exec_run(["id"]))
    assert refused(lambda: run.logs())
    assert refused(lambda: client.api.get_archive(run.id, "/etc"))
    assert refused(lambda: client.containers.get(engine.other))
    assert refused(lambda: client.images.list())
    assert refused(lambda: client.containers.list(all=True))
    for method, path, body in [
        ("POST", f"/v1.41/containers/{run.id}/exec", b'{"Cmd": ["id"]}'),
        ("GET", f"/v1.41/containers/{run.id}/archive?path=/etc", None),
        ("PUT", f"/v1.41/containers/{run.id}/archive?path=/", b""),
        ("GET", f"/v1.41/containers/{run.id}/export", None),
        ("GET", f"/v1.41/containers/{run.id}/logs?stdout=1&stderr=1", None),
        ("POST", f"/v1.41/containers/{run.id}/attach?stream=1&stdout=1", None),
        ("GET", f"/v1.41/containers/{engine.other}/json", None),
        ("POST", f"/v1.41/containers/{engine.other}/start", None),
        ("POST", f"/v1.23/containers/{run.id}/start", b'{"Privileged": true}'),
        ("GET", "/v1.41/images/json", None),
        ("POST", "/v1.41/images/create?fromImage=busybox", None),
        ("POST", "/v1.41/volumes/create", b'{"Name": "x"}'),
        ("POST", f"/v1.41/networks/{engine.network}/connect", b'{"Container": "x"}'),
    ]:
        status, answer = engine.raw("launcher", method, path, body)
        assert status == 403 and json.loads(answer)["message"].startswith("docker-api-guard"), path

    mine = engine.client.containers.list(
        all=True, filters={"label": f"mlplatform-guardtest={engine.prefix}"}
    )
    assert {c.name for c in mine} >= {f"{engine.prefix}-run", f"{engine.prefix}-other"}
    for container in mine:
        host = container.attrs["HostConfig"]
        assert not host["Privileged"] and not host["CapAdd"] and not host["Devices"]
        assert not any(bind.startswith("/") for bind in host["Binds"] or []), container.name
    assert engine.client.containers.get(engine.other).status == "created"


@pytest.mark.slow
def test_the_stopper_guard_stops_runs_and_nothing_else(engine, monkeypatch):
    secret = "not-for-the-webserver"
    run = engine.client.containers.run(
        ENGINE_IMAGE, SLEEPER, detach=True, name=f"{engine.prefix}-stoppable",
        labels={**RUN, **engine.label}, environment={"MLFLOW_TRACKING_PASSWORD": secret},
        network=engine.network,
    )  # fmt: skip
    client = engine.through("stopper")
    seen = client.containers.get(run.id)
    assert seen.status == "running" and "Env" not in seen.attrs["Config"]
    assert secret not in json.dumps(seen.attrs)

    assert refused(lambda: client.containers.create(
        ENGINE_IMAGE, SLEEPER, network=engine.network, labels={**RUN, **engine.label}))  # fmt: skip
    assert refused(lambda: client.containers.get(engine.other))
    assert refused(lambda: client.images.list())
    for method, path in [
        ("POST", f"/v1.41/containers/{run.id}/exec"),
        ("GET", f"/v1.41/containers/{run.id}/archive?path=/etc"),
        ("GET", f"/v1.41/containers/{run.id}/export"),
        ("GET", f"/v1.41/containers/{run.id}/logs?stdout=1"),
        ("POST", f"/v1.41/containers/{run.id}/start"),
        ("POST", f"/v1.41/containers/{run.id}/wait"),
        ("POST", f"/v1.41/containers/{engine.other}/stop"),
    ]:
        status, _ = engine.raw("stopper", method, path)
        assert status == 403, path

    # Terminate in the UI: the webserver's DockerRunLauncher.terminate, through the stopper.
    launcher_env(monkeypatch)
    monkeypatch.setenv("DOCKER_HOST", f"tcp://127.0.0.1:{engine.ports['stopper']}")
    launcher, instance = dagster_launcher(engine.network, engine.volume, engine.label, 5)
    instance.tags["docker/container_id"] = run.id
    assert launcher.terminate(instance.run.run_id)
    assert engine.client.containers.get(run.id).status == "exited"
