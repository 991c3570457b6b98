"""The compose stack of docker/ on a real Docker engine, for test_stack.py: the engine started where
this machine has one to start, local base images where no registry answers, the stack deployed by
docker/deploy-pipeline.sh (the user's own command), the UI reached through its login, and
everything the test made taken down again.

On a laptop without an engine the tests skip; in CI (`CI=true`) they fail.
"""

from __future__ import annotations

import base64
import json
import os
import shutil
import subprocess
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from mlplatform_tests.servers import free_ports, unavailable

PROJECT = Path(__file__).resolve().parents[1]
DOCKER_DIR = PROJECT / "docker"
COMPOSE_PROJECT = "mlplatform-stack-test"
RUN_LABEL = "com.mlplatform.role=run"
# Names fixed by the compose file (run containers join and mount them by name).
NETWORK, DATA_VOLUME = "mlplatform-network", "mlplatform-data"
LOCAL_IMAGES = {
    "MLPLATFORM_BASE_IMAGE": "mlplatform-local/debian:bookworm",
    "POSTGRES_IMAGE": "mlplatform-local/postgres",
    "PROMETHEUS_IMAGE": "mlplatform-local/prometheus",
    "NGINX_IMAGE": "mlplatform-local/nginx",
}
# The stack's settings folder, put on the data volume: the packaged pipeline on fewer rows and a
# search bounded by trials, so a day trains in about a minute on two cores.
STACK_SETTINGS = {
    "platform.yaml": {
        "data_source": {"generator": {"rows_per_day": 4000}},
        "training": {
            "folds": 2,
            "trials_per_family": 2,
            "time_budget_seconds": 3600,
            "max_search_negatives": 3000,
            "bootstrap_resamples": 100,
        },
    },
}


def docker_client() -> str:
    """The Docker client that matches Debian's engine (a newer one may stand first on PATH)."""
    for candidate in ("/usr/bin/docker", shutil.which("docker")):
        if candidate and os.access(candidate, os.X_OK):
            return candidate
    unavailable("no Docker client; install Debian's `docker.io`")
    raise AssertionError("unreachable")


def run(command: list[str], timeout: float = 600, check: bool = True, **kwargs: Any) -> str:
    result = subprocess.run(
        command, capture_output=True, text=True, timeout=timeout, check=False, **kwargs
    )
    if check and result.returncode != 0:
        raise AssertionError(
            f"{' '.join(command[:4])}... exited {result.returncode}:\n"
            f"{result.stdout[-3000:]}\n{result.stderr[-3000:]}"
        )
    return result.stdout


def ensure_engine() -> str:
    """A running engine: started here if it is installed and nothing runs it."""
    docker = docker_client()
    if subprocess.run([docker, "info"], capture_output=True, check=False).returncode == 0:
        return docker
    if not shutil.which("dockerd") or os.geteuid() != 0:
        unavailable("no Docker engine answers and this user cannot start one (docker.io, root)")
    run(["bash", str(DOCKER_DIR / "local/start-engine.sh")], timeout=120)
    return docker


def ensure_base_images() -> None:
    if not shutil.which("debootstrap"):
        unavailable("`debootstrap` not found; install Debian's `debootstrap`")
    run(["bash", str(DOCKER_DIR / "local/build-base-images.sh")], timeout=900)


@dataclass
class Stack:
    docker: str
    compose: list[str]
    env: dict[str, str]
    env_file: Path

    def value(self, key: str) -> str:
        for line in self.env_file.read_text().splitlines():
            if line.startswith(f"{key}="):
                return line.split("=", 1)[1]
        return self.env[key]

    @property
    def ui(self) -> str:
        return f"http://127.0.0.1:{self.env['DAGSTER_UI_PORT']}"

    @property
    def viewer_ui(self) -> str:
        return f"http://127.0.0.1:{self.env['DAGSTER_VIEWER_PORT']}"

    @property
    def mlflow(self) -> str:
        return f"http://127.0.0.1:{self.env['MLFLOW_UI_PORT']}"

    def operator(self) -> tuple[str, str]:
        return self.value("DAGSTER_UI_USERNAME"), self.value("DAGSTER_UI_PASSWORD")

    def viewer(self) -> tuple[str, str]:
        return self.value("DAGSTER_VIEWER_USERNAME"), self.value("DAGSTER_VIEWER_PASSWORD")

    def compose_run(self, *args: str, timeout: float = 300, check: bool = True) -> str:
        return run([*self.compose, *args], timeout=timeout, check=check, env=self.env)

    def container(self, service: str) -> str:
        return self.compose_run("ps", "-q", service).strip()

    def exec(self, service: str, *command: str, timeout: float = 120) -> str:
        return self.compose_run("exec", "-T", service, *command, timeout=timeout)

    def inspect(self, container: str) -> dict[str, Any]:
        return json.loads(run([self.docker, "inspect", container]))[0]

    def run_containers(self, run_id: str | None = None) -> list[str]:
        filters = ["--filter", f"label={RUN_LABEL}"]
        if run_id:
            filters += ["--filter", f"label=dagster/run_id={run_id}"]
        return run([self.docker, "ps", "-aq", *filters]).split()

    def graphql(
        self, query: str, variables: dict[str, Any] | None = None, *, viewer: bool = False
    ) -> dict[str, Any]:
        """A GraphQL request through the login proxy, as the operator (or the viewer)."""
        base, (user, password) = (
            (self.viewer_ui, self.viewer()) if viewer else (self.ui, self.operator())
        )
        # A database restart costs the webserver's pooled connections one failed query each: the
        # UI shows an error and the next request works. The tests ask again, as a person would.
        for attempt in range(6):
            status, body = http(
                f"{base}/graphql",
                {"query": query, "variables": variables or {}},
                auth=(user, password),
            )
            if status < 500:
                break
            time.sleep(2 * (attempt + 1))
        assert status == 200, (status, body[:500])
        answer = json.loads(body)
        assert "errors" not in answer, answer["errors"]
        return answer["data"]


def http(
    url: str,
    payload: dict[str, Any] | None = None,
    auth: tuple[str, str] | None = None,
    timeout: float = 60,
) -> tuple[int, str]:
    request = urllib.request.Request(
        url,
        data=json.dumps(payload).encode() if payload is not None else None,
        headers={"Content-Type": "application/json"} if payload is not None else {},
    )
    if auth:
        token = base64.b64encode(f"{auth[0]}:{auth[1]}".encode()).decode()
        request.add_header("Authorization", f"Basic {token}")
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:
            return response.status, response.read().decode()
    except urllib.error.HTTPError as error:
        return error.code, error.read().decode(errors="replace")
    except (urllib.error.URLError, ConnectionError, TimeoutError) as error:
        # Nothing answered (a service restarting): a gateway's answer, so callers may retry.
        return 503, str(error)


def _put_settings_on_the_volume(docker: str, folder: Path) -> None:
    import yaml

    for name, content in STACK_SETTINGS.items():
        (folder / name).write_text(yaml.safe_dump(content))
    run([docker, "volume", "create", DATA_VOLUME])
    # As the platform's user (uid 10001, the image's): the runs write next to it.
    run([
        docker, "run", "--rm", "-v", f"{DATA_VOLUME}:/data", "-v", f"{folder}:/src:ro",
        LOCAL_IMAGES["MLPLATFORM_BASE_IMAGE"], "sh", "-c",
        "mkdir -p /data/settings && cp /src/*.yaml /data/settings/ && chown -R 10001:10001 /data",
    ])  # fmt: skip


def take_down(docker: str) -> None:
    """Every container, network and volume the stack made, run containers included: found by the
    compose project's labels and the fixed names, so it works whatever state a run left."""
    project = f"label=com.docker.compose.project={COMPOSE_PROJECT}"
    containers = run([docker, "ps", "-aq", "--filter", project], check=False).split()
    containers += run([docker, "ps", "-aq", "--filter", f"label={RUN_LABEL}"], check=False).split()
    if containers:
        run([docker, "rm", "-f", "-v", *sorted(set(containers))], check=False)
    networks = run([docker, "network", "ls", "-q", "--filter", project], check=False).split()
    for network in [*networks, NETWORK]:
        run([docker, "network", "rm", network], check=False)
    volumes = run([docker, "volume", "ls", "-q", "--filter", project], check=False).split()
    for volume in [*volumes, DATA_VOLUME]:
        run([docker, "volume", "rm", "-f", volume], check=False)


def deployed_stack(workdir: Path) -> Iterator[Stack]:
    """The stack deployed with docker/deploy-pipeline.sh on local base images, on free ports."""
    docker = ensure_engine()
    if not shutil.which("docker-compose"):
        unavailable("`docker-compose` not found; install Debian's `docker-compose`")
    ensure_base_images()
    ui_port, viewer_port, mlflow_port = free_ports(3)
    env = {
        **os.environ,
        **LOCAL_IMAGES,
        # The client that speaks the engine's API version, first on PATH for compose and the script.
        "PATH": f"{Path(docker).parent}:{os.environ.get('PATH', '')}",
        "COMPOSE_PROJECT_NAME": COMPOSE_PROJECT,
        "MLPLATFORM_ENV_FILE": str(workdir / "stack.env"),
        "MLPLATFORM_SECRETS_DIR": str(workdir / "secrets"),
        "MLPLATFORM_SETTINGS_DIR": "/data/settings",
        "DAGSTER_UI_PORT": str(ui_port),
        "DAGSTER_VIEWER_PORT": str(viewer_port),
        "MLFLOW_UI_PORT": str(mlflow_port),
        "MLPLATFORM_RUN_MEMORY_LIMIT": "3g",
        "MLPLATFORM_RUN_NANO_CPUS": "1500000000",
        "MLPLATFORM_DEPLOY_TIMEOUT": "600",
        # What deploy-pipeline.sh would read, for the compose commands the tests run themselves.
        "DOCKER_SOCKET_GID": str(os.stat("/var/run/docker.sock").st_gid),
    }
    env.pop("DAGSTER_HOME", None)
    compose = [
        "docker-compose", "--project-directory", str(DOCKER_DIR),
        "-f", str(DOCKER_DIR / "docker-compose.yaml"), "--env-file", str(workdir / "stack.env"),
    ]  # fmt: skip
    take_down(docker)
    settings = workdir / "settings"
    settings.mkdir()
    _put_settings_on_the_volume(docker, settings)
    try:
        run(["bash", str(DOCKER_DIR / "deploy-pipeline.sh")], timeout=1200, env=env)
        yield Stack(docker, compose, env, workdir / "stack.env")
    finally:
        logs = subprocess.run(
            [*compose, "logs", "--tail", "200", "daemon", "user-code"],
            env=env, capture_output=True, text=True, check=False, timeout=120,
        )  # fmt: skip
        (workdir / "stack.log").write_text(logs.stdout + logs.stderr)
        # MLPLATFORM_KEEP_STACK=1 leaves it running to look into (take it down yourself after).
        if os.environ.get("MLPLATFORM_KEEP_STACK") != "1":
            take_down(docker)
