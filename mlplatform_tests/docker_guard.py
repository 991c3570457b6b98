"""Helpers for the Docker API guard's tests (test_docker_api_guard.py): the requests docker-py
and dagster-docker's DockerRunLauncher send, captured before they leave, and the guard started
in front of the real Docker engine for both profiles, with everything it made removed after.

On a laptop without an engine the real-engine tests skip; in CI (`CI=true`) they fail."""

from __future__ import annotations

import http.client
import os
import sys
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager, suppress
from dataclasses import dataclass
from pathlib import Path
from unittest import mock
from urllib.parse import urlsplit

import docker.errors
import pytest
import yaml

from mlplatform_tests.servers import (
    free_port,
    http_ok,
    start_process,
    stop_process_group,
    unavailable,
    wait_until,
)

PROJECT = Path(__file__).resolve().parents[1]
INSTANCE = yaml.safe_load((PROJECT / "docker" / "dagster.yaml").read_text())
LAUNCHER_CONFIG = INSTANCE["run_launcher"]["config"]
VOLUME = "mlplatform-data"
RUN = {"com.mlplatform.role": "run"}

# --- What docker-py sends ---------------------------------------------------------------------


class Captured(Exception):
    def __init__(self, request):
        super().__init__("captured")
        self.request = request


def docker_py_request(call: Callable[[], object]) -> tuple[str, str, str, bytes]:
    """(method, path, query, body) of the first request `call` makes through docker-py."""

    def send(_session, request, **_kwargs):
        raise Captured(request)

    with (
        mock.patch.object(docker.APIClient, "send", send),
        mock.patch.object(docker.APIClient, "_retrieve_server_version", lambda _self: "1.41"),
        pytest.raises(Captured) as captured,
    ):
        call()
    request = captured.value.request
    url = urlsplit(request.url)
    body = request.body or b""
    return request.method, url.path, url.query, body.encode() if isinstance(body, str) else body


def launcher_env(monkeypatch: pytest.MonkeyPatch) -> None:
    """Stand-in values for the variables docker/dagster.yaml passes to runs (never real ones)."""
    for name in LAUNCHER_CONFIG["env_vars"]:
        monkeypatch.setenv(name.partition("=")[0], f"stand-in-{name.lower()}")


class FakeInstance:
    """What DockerRunLauncher asks of its instance: the run, and where it records the container."""

    def __init__(self, run):
        self.run = run
        self.tags: dict[str, str] = {}

    def report_engine_event(self, *args: object, **kwargs: object) -> None:
        pass

    report_run_canceling = report_engine_event

    def add_run_tags(self, _run_id: str, tags: dict[str, str]) -> None:
        self.tags.update(tags)

    def get_run_by_id(self, _run_id: str):
        return self.run_with_tags()

    def run_with_tags(self):
        from dagster._core.storage.dagster_run import DagsterRun

        return DagsterRun(job_name=self.run.job_name, run_id=self.run.run_id, tags=self.tags)


def dagster_launcher(
    network: str,
    volume: str,
    extra_labels: dict[str, str],
    stop_timeout: int | None = None,
    **more_kwargs: object,
):
    """The DockerRunLauncher as docker/dagster.yaml configures it, on `network` and `volume`;
    `more_kwargs` as a code location's container context adds them (a shallow merge, as
    DockerContainerContext.merge does: the run containers' limits in docker-compose.yaml)."""
    from dagster._core.storage.dagster_run import DagsterRun
    from dagster_docker import DockerRunLauncher

    kwargs = dict(LAUNCHER_CONFIG["container_kwargs"])
    kwargs["volumes"] = [bind.replace(VOLUME + ":", volume + ":") for bind in kwargs["volumes"]]
    kwargs["labels"] = {**kwargs["labels"], **extra_labels}
    if stop_timeout is not None:
        kwargs["stop_timeout"] = stop_timeout
    kwargs.update(more_kwargs)
    assert LAUNCHER_CONFIG["network"] == {"env": "MLPLATFORM_DOCKER_NETWORK"}
    launcher = DockerRunLauncher(
        env_vars=LAUNCHER_CONFIG["env_vars"], network=network, container_kwargs=kwargs
    )
    instance = FakeInstance(DagsterRun(job_name="daily_training", run_id=str(uuid.uuid4())))
    launcher.register_instance(instance)  # type: ignore[arg-type]
    return launcher, instance


# --- The guard in front of the real engine ----------------------------------------------------

SOCKET = "/var/run/docker.sock"
# Built locally by docker/local/build-base-images.sh: never pulled (no registry is reachable).
ENGINE_IMAGE = "mlplatform-local/debian:bookworm"
# Sleeps until stopped, and stops at once on SIGTERM (as PID 1 it would otherwise ignore it).
SLEEPER = ["bash", "-c", "trap 'exit 0' TERM; sleep 300 & wait"]


@dataclass
class Engine:
    client: docker.DockerClient  # straight to the socket: setting up and looking
    prefix: str
    network: str
    volume: str
    other: str  # a container that is not a run
    ports: dict[str, int]

    @property
    def label(self) -> dict[str, str]:
        return {"mlplatform-guardtest": self.prefix}

    def through(self, profile: str) -> docker.DockerClient:
        return docker.DockerClient(base_url=f"tcp://127.0.0.1:{self.ports[profile]}", timeout=60)

    def raw(self, profile: str, method: str, path: str, body: bytes | None = None):
        connection = http.client.HTTPConnection("127.0.0.1", self.ports[profile], timeout=60)
        try:
            connection.request(method, path, body=body)
            response = connection.getresponse()
            return response.status, response.read()
        finally:
            connection.close()


def engine_client() -> docker.DockerClient:
    """The local engine, or a skip (laptop) / failure (CI) when none answers or the base image
    is missing."""
    try:
        client = docker.DockerClient(base_url=f"unix://{SOCKET}", timeout=30)
        client.ping()
    except Exception as error:  # docker-py raises several kinds when nothing listens
        unavailable(f"no Docker engine answers at {SOCKET} ({type(error).__name__})")
    try:
        client.images.get(ENGINE_IMAGE)
    except docker.errors.ImageNotFound:
        unavailable(f"{ENGINE_IMAGE} is not built (docker/local/build-base-images.sh)")
    return client


@contextmanager
def guarded_engine(logs: Path) -> Iterator[Engine]:
    """Both guards on free ports of 127.0.0.1, allowing the base image, a network and a volume
    of their own; and a container that is not a run. Everything is removed after."""
    client = engine_client()
    prefix = f"mlplatform-guardtest-{uuid.uuid4().hex[:8]}"
    label = {"mlplatform-guardtest": prefix}
    guards = []
    try:
        network = client.networks.create(f"{prefix}-net", labels=label)
        other = client.containers.create(
            ENGINE_IMAGE, SLEEPER, name=f"{prefix}-other", labels=label, network=network.name
        )
        environ = {
            **os.environ, "DOCKER_GUARD_IMAGES": ENGINE_IMAGE,
            "DOCKER_GUARD_NETWORKS": network.name, "DOCKER_GUARD_VOLUMES": f"{prefix}-data",
            "DOCKER_GUARD_SOCKET": SOCKET,
        }  # fmt: skip
        ports = {}
        for profile in ("launcher", "stopper"):
            ports[profile] = port = free_port()
            log = logs / f"{profile}.log"
            command = [
                sys.executable, "-m", "mlplatform.deployment.docker_api_guard",
                "--profile", profile, "--listen", f"127.0.0.1:{port}",
            ]  # fmt: skip
            guards.append(process := start_process(command, log, env=environ, cwd=PROJECT))
            wait_until(
                lambda port=port: http_ok(f"http://127.0.0.1:{port}/_ping"),
                30, f"the {profile} guard", process, log,
            )  # fmt: skip
        yield Engine(client, prefix, network.name, f"{prefix}-data", other.id, ports)
    finally:
        for process in guards:
            stop_process_group(process)
        for filters in ({"label": f"mlplatform-guardtest={prefix}"}, {"name": prefix}):
            for container in client.containers.list(all=True, filters=filters):
                with suppress(docker.errors.NotFound):
                    container.remove(force=True)
        for network in client.networks.list(filters={"label": f"mlplatform-guardtest={prefix}"}):
            network.remove()
        with suppress(docker.errors.NotFound):
            client.volumes.get(f"{prefix}-data").remove(force=True)
        assert not client.containers.list(all=True, filters={"name": prefix})


def refused(call: Callable[[], object]) -> str:
    with pytest.raises(docker.errors.APIError) as error:
        call()
    assert error.value.status_code == 403, error.value
    return str(error.value.explanation)
