"""The Docker deployment in docker/, shown without a Docker engine: the compose file and the
Dockerfile validated offline, the pieces checked against each other, the deploy script driven
through a stand-in `docker` command, and the production instance and MLflow server mode run for
real against PostgreSQL and `mlflow server` on 127.0.0.1."""

import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import dagster as dg
import psycopg2
import pytest
import yaml

from mlplatform.config.orchestration import load_orchestration
from mlplatform_tests.servers import (
    PostgresServer,
    free_port,
    http_ok,
    postgres_server,
    require_executable,
    start_process,
    stop_process_group,
    wait_until,
)

PROJECT = Path(__file__).resolve().parents[1]
DOCKER = PROJECT / "docker"
BIN = Path(sys.executable).parent
DAY = "2026-03-02"
ALL_ASSETS = [
    "raw_transactions", "validated_transactions", "quarantined_transactions", "features",
    "trained_model", "registered_model_version", "batch_scores", "shadow_scores", "outcomes",
    "quarantined_outcomes", "model_performance",
]  # fmt: skip

# Every file under docker/ and the test that reads it: nothing there is dead configuration.
STACK_LOGIN_TEST = "test_the_ui_asks_for_a_login_and_viewers_change_nothing"
STACK_RUN_TEST = "test_a_day_runs_in_its_own_container_survives_a_kill_and_registers"
CHECKED_FILES = {
    "docker/Dockerfile": "test_dockerfile_passes_hadolint",
    "docker/Dockerfile.dockerignore": "test_build_context_holds_what_the_dockerfile_copies",
    "docker/docker-compose.yaml": "test_compose_file_is_valid_for_docker_compose",
    "docker/docker-compose.step-containers.yaml": "test_step_containers_get_the_proxy",
    "docker/.env.example": "test_env_example_names_every_variable_compose_reads",
    "docker/dagster.yaml": "test_production_instance_in_postgresql",
    "docker/workspace.yaml": "test_workspace_points_at_the_code_server",
    "docker/deploy-pipeline.sh": "test_deploy_script_stands_the_stack_up",
    "docker/postgres/create-databases.sh": "test_production_instance_in_postgresql",
    "docker/mlflow/basic_auth.ini": "test_only_the_platform_account_moves_an_alias",
    "docker/mlflow/create-users.py": "test_only_the_platform_account_moves_an_alias",
    "docker/README.md": "test_docker_readme_names_every_file",
    "docker/k8s/values.yaml": "test_helm_values_match_the_compose_stack",
    "docker/k8s/README.md": "test_docker_readme_names_every_file",
    "docker/login-proxy/nginx.conf": f"test_stack.{STACK_LOGIN_TEST}",
    "docker/login-proxy/proxy.conf": f"test_stack.{STACK_LOGIN_TEST}",
    **{
        f"docker/local/{name}": f"test_stack.{STACK_RUN_TEST}"
        for name in (
            "build-base-images.sh", "start-engine.sh", "postgres.Dockerfile",
            "postgres-entrypoint.sh", "prometheus.Dockerfile", "nginx.Dockerfile",
        )
    },
}  # fmt: skip


def compose() -> dict[str, Any]:
    return yaml.safe_load((DOCKER / "docker-compose.yaml").read_text())


def merged_compose(*files: str) -> dict[str, Any]:
    """The compose model as docker-compose v1 resolves it (anchors, overrides, .env.example)."""
    docker_compose = require_executable("docker-compose", "docker-compose")
    paths = [arg for name in files for arg in ("-f", str(DOCKER / name))]
    result = run_tool(
        docker_compose, *paths, "--env-file", str(DOCKER / ".env.example"), "config"
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    return yaml.safe_load(result.stdout)


def env_example() -> dict[str, str]:
    values = {}
    for line in (DOCKER / ".env.example").read_text().splitlines():
        if line and not line.startswith("#"):
            key, _, value = line.partition("=")
            values[key] = value
    return values


def run_tool(*command: str, **kwargs: Any) -> subprocess.CompletedProcess:
    # The socket's group is the host's (deploy-pipeline.sh reads it); any number does here.
    kwargs.setdefault("env", {**os.environ, "DOCKER_SOCKET_GID": "999"})
    return subprocess.run(command, capture_output=True, text=True, timeout=120, **kwargs)


# --- offline validation ---------------------------------------------------------------------


def test_every_file_under_docker_is_checked():
    present = {
        str(path.relative_to(PROJECT))
        for path in DOCKER.rglob("*")
        # docker/.env and docker/secrets/ are a deployment's own, made by deploy-pipeline.sh.
        if path.is_file() and path.name != ".env" and "secrets" not in path.parts
    }
    assert present == set(CHECKED_FILES), "unchecked or missing files under docker/"
    from mlplatform_tests import test_stack

    for test in CHECKED_FILES.values():
        module, _, name = test.rpartition(".")
        assert name in (vars(test_stack) if module == "test_stack" else globals()), test


def test_compose_file_is_valid_for_docker_compose(tmp_path):
    docker_compose = require_executable("docker-compose", "docker-compose")
    result = run_tool(
        docker_compose, "-f", str(DOCKER / "docker-compose.yaml"),
        "--env-file", str(DOCKER / ".env.example"), "config", "-q",
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    # A required secret left out of the environment file is refused, naming it.
    without_password = tmp_path / "env"
    without_password.write_text(
        "".join(
            f"{key}={value}\n"
            for key, value in env_example().items()
            if key != "MLFLOW_POSTGRES_PASSWORD"
        )
    )
    refused = run_tool(
        docker_compose, "-f", str(DOCKER / "docker-compose.yaml"),
        "--env-file", str(without_password), "config", "-q",
    )  # fmt: skip
    assert refused.returncode != 0
    assert "MLFLOW_POSTGRES_PASSWORD" in refused.stderr


def test_compose_file_matches_the_compose_specification():
    result = run_tool(
        str(BIN / "check-jsonschema"), "--builtin-schema", "vendor.compose-spec",
        str(DOCKER / "docker-compose.yaml"), str(DOCKER / "docker-compose.step-containers.yaml"),
    )  # fmt: skip
    assert result.returncode == 0, result.stdout + result.stderr


def test_dockerfile_passes_hadolint():
    result = run_tool(str(BIN / "hadolint"), str(DOCKER / "Dockerfile"))
    assert result.returncode == 0, result.stdout + result.stderr


def test_shell_scripts_pass_shellcheck():
    scripts = [DOCKER / "deploy-pipeline.sh", DOCKER / "postgres" / "create-databases.sh"]
    result = run_tool(str(BIN / "shellcheck"), *map(str, scripts))
    assert result.returncode == 0, result.stdout + result.stderr


# --- the pieces agree with each other ---------------------------------------------------------


def test_image_runs_as_an_unprivileged_user_with_compiled_bytecode():
    dockerfile = (DOCKER / "Dockerfile").read_text()
    runtime_stage = dockerfile.split(" AS runtime", 1)[1]
    user = re.findall(r"^USER (\S+)", runtime_stage, flags=re.M)
    assert user and user[-1] not in ("root", "0", "0:0")
    uid = re.search(r"ARG UID=(\d+)", runtime_stage)
    assert uid and int(uid.group(1)) >= 1000
    assert "uv sync --frozen --no-dev" in dockerfile
    assert "UV_COMPILE_BYTECODE=1" in dockerfile


def test_build_context_holds_what_the_dockerfile_copies():
    """The build context is filtered by Dockerfile.dockerignore: every local COPY source must pass
    the filter, and nothing else (no .venv, no data, no .env)."""
    ignore = (DOCKER / "Dockerfile.dockerignore").read_text().splitlines()
    allowed = {line[1:].rstrip("/") for line in ignore if line.startswith("!")}
    copied = set()
    for line in (DOCKER / "Dockerfile").read_text().splitlines():
        if line.startswith("COPY") and "--from=" not in line:
            sources = [part for part in line.split()[1:-1] if not part.startswith("--")]
            copied.update(sources)
    assert copied == allowed
    assert "*" in ignore


def test_workspace_points_at_the_code_server():
    workspace = yaml.safe_load((DOCKER / "workspace.yaml").read_text())
    (entry,) = workspace["load_from"]
    server = entry["grpc_server"]
    services = compose()["services"]
    assert server["host"] in services
    # The code server listens where the workspace says, in the image's default command and in
    # the compose service's.
    dockerfile = (DOCKER / "Dockerfile").read_text()
    assert f'"-p", "{server["port"]}"' in dockerfile
    assert f"EXPOSE {server['port']}" in dockerfile
    assert f'"--location-name", "{server["location_name"]}"' in dockerfile
    command = services[server["host"]]["command"]
    assert command[command.index("-p") + 1] == str(server["port"])
    assert command[command.index("--location-name") + 1] == server["location_name"]


def test_run_launcher_gets_what_runs_need():
    instance = yaml.safe_load((DOCKER / "dagster.yaml").read_text())
    spec = compose()
    services = spec["services"]
    launcher = instance["run_launcher"]["config"]
    # DockerRunLauncher reads each listed variable from the launching process (the daemon, or
    # the webserver for a direct launch); an unset one fails every launch.
    for service in ("daemon", "webserver"):
        environment = services[service]["environment"]
        missing = [name for name in launcher["env_vars"] if name not in environment]
        assert not missing, f"{service} lacks {missing}"
    # Run containers join the compose network and share the data volume, by their fixed names.
    network_variable = launcher["network"]["env"]
    assert (
        services["daemon"]["environment"][network_variable]
        == spec["networks"]["mlplatform"]["name"]
    )
    (volume,) = launcher["container_kwargs"]["volumes"]
    volume_name, mount = volume.split(":")
    assert spec["volumes"]["mlplatform-data"]["name"] == volume_name
    assert f"mlplatform-data:{mount}" in services["user-code"]["volumes"]
    assert services["daemon"]["environment"]["MLPLATFORM_DATA_DIR"].startswith(mount + "/")
    # The code location adds each run's limits to the launcher's container settings, which
    # dagster-docker merges key by key: the volume, labels and stop timeout stay.
    from dagster_docker.container_context import DockerContainerContext

    command = merged_compose("docker-compose.yaml")["services"]["user-code"]["command"]
    added = json.loads(command[command.index("--container-context") + 1])["docker"]
    assert set(added) == {"container_kwargs"}
    assert set(added["container_kwargs"]) == {"mem_limit", "nano_cpus"}
    merged = DockerContainerContext(container_kwargs=launcher["container_kwargs"]).merge(
        DockerContainerContext(container_kwargs=added["container_kwargs"])
    )
    assert merged.container_kwargs == {**launcher["container_kwargs"], **added["container_kwargs"]}
    assert "DAGSTER_CONTAINER_CONTEXT" not in services["user-code"]["environment"]
    # Runs get what they use and no secret they do not: no alert webhook (sensors run in the
    # code server), no Docker API, no other role's password.
    for unneeded in ("MLPLATFORM_ALERT_WEBHOOK_URL", "DOCKER_HOST", "MLFLOW_POSTGRES_PASSWORD"):
        assert unneeded not in launcher["env_vars"], unneeded
    # Runs start from the code server's own image.
    user_code = services["user-code"]
    assert user_code["environment"]["DAGSTER_CURRENT_IMAGE"] == user_code["image"]
    # The instance's database settings come from the environment of every Dagster service.
    postgres_variables = [
        value["env"]
        for value in instance["storage"]["postgres"]["postgres_db"].values()
        if isinstance(value, dict)
    ]
    for service in ("user-code", "webserver", "daemon"):
        assert set(postgres_variables) <= set(services[service]["environment"]), service


def instance_environment_variables(node: Any) -> set[str]:
    """Every `{env: NAME}` in a parsed dagster.yaml."""
    if isinstance(node, dict):
        if set(node) == {"env"}:
            return {node["env"]}
        return set().union(*(instance_environment_variables(v) for v in node.values()))
    if isinstance(node, list):
        return set().union(*(instance_environment_variables(v) for v in node))
    return set()


def image_environment() -> set[str]:
    runtime = (DOCKER / "Dockerfile").read_text().split(" AS runtime", 1)[1]
    return set(re.findall(r"(?:ENV |\\\n\s+)([A-Z_]+)=", runtime))


def test_every_variable_the_instance_reads_reaches_run_containers():
    """A run container loads the instance from this file: each variable it reads must be passed
    by the launcher (env_vars) or set in the image, or the run fails as it starts."""
    instance = yaml.safe_load((DOCKER / "dagster.yaml").read_text())
    passed = set(instance["run_launcher"]["config"]["env_vars"])
    needed = instance_environment_variables(instance)
    assert "DAGSTER_HOME" in image_environment()
    assert needed <= passed | image_environment(), sorted(needed - passed)


def test_services_are_reachable_only_from_this_host_and_healthy_before_use():
    services = compose()["services"]
    for name, service in services.items():
        for port in service.get("ports", []):
            assert port.startswith("127.0.0.1:"), f"{name} publishes {port} on every interface"
        for dependency, condition in service.get("depends_on", {}).items():
            if services[dependency].get("restart") == "no":
                # A service that does its work and exits (MLflow's accounts).
                assert condition == {"condition": "service_completed_successfully"}, name
                continue
            assert condition == {"condition": "service_healthy"}, (name, dependency)
            assert "healthcheck" in services[dependency], dependency
    # The MLflow server accepts the host name the platform reaches it by.
    tracking = services["daemon"]["environment"]["MLFLOW_TRACKING_URI"]
    host = re.match(r"https?://([^/]+)", tracking).group(1)
    allowed = services["mlflow"]["environment"]["MLFLOW_SERVER_ALLOWED_HOSTS"].split(",")
    assert host in allowed and host.split(":")[0] in allowed
    assert services["mlflow"]["environment"]["MLFLOW_SERVER_ENABLE_JOB_EXECUTION"] == "false"


# --- the Docker API, only through the guards ------------------------------------------------

DOCKER_SOCKET = "/var/run/docker.sock"
# Which guard each Docker API user reaches, and its profile (mlplatform/deployment/
# docker_api_policy.py): the daemon launches, watches and stops run containers; the webserver only
# stops them (Terminate in the UI). What each profile lets through, body by body, is tested
# against a real engine in test_docker_api_guard.py.
PROXY_OF = {"daemon": "docker-proxy", "webserver": "docker-proxy-stop"}
PROFILE = {"docker-proxy": "launcher", "docker-proxy-stop": "stopper"}


def test_docker_socket_only_in_the_proxies():
    spec = merged_compose("docker-compose.yaml")
    services = spec["services"]
    mounting = {
        name: [v for v in service.get("volumes", []) if DOCKER_SOCKET in v]
        for name, service in services.items()
    }
    mounting = {name: volumes for name, volumes in mounting.items() if volumes}
    assert mounting == {proxy: [f"{DOCKER_SOCKET}:{DOCKER_SOCKET}:ro"] for proxy in PROFILE}, (
        "only the guards mount the Docker socket"
    )
    # Nothing else reaches the socket some other way: no host group but the guards' (the
    # socket's), no privileged service, and neither the instance nor any run is given the socket.
    for name, service in services.items():
        assert not service.get("privileged"), name
        assert "group_add" not in service or name in PROFILE, name
    assert DOCKER_SOCKET not in (DOCKER / "dagster.yaml").read_text()
    launcher = yaml.safe_load((DOCKER / "dagster.yaml").read_text())["run_launcher"]["config"]
    for proxy, profile in PROFILE.items():
        service = services[proxy]
        command = service["command"]
        assert command[:3] == ["python", "-m", "mlplatform.deployment.docker_api_guard"]
        assert command[command.index("--profile") + 1] == profile
        assert [str(gid) for gid in service["group_add"]] == ["999"]  # DOCKER_SOCKET_GID
        # The platform's own image, read-only, without capabilities, unpublished, alone on an
        # internal network with its one client.
        assert service["image"] == services["user-code"]["image"]
        assert service["read_only"] is True and "ports" not in service
        assert service["cap_drop"] == ["ALL"]
        assert "no-new-privileges:true" in service["security_opt"]
        (network,) = service["networks"]
        assert spec["networks"][network].get("internal") is True
        on_network = {n for n, svc in services.items() if network in svc.get("networks", [])}
        (client,) = [c for c, p in PROXY_OF.items() if p == proxy]
        assert on_network == {proxy, client}
        assert services[client]["depends_on"][proxy] == {"condition": "service_healthy"}
        environment = service["environment"]
        assert (
            environment["DOCKER_GUARD_RUN_LABEL"]
            == "com.mlplatform.role="
            + (launcher["container_kwargs"]["labels"]["com.mlplatform.role"])
        )
    # The launcher's guard lets through exactly the image, network and volume runs use.
    allowed = services["docker-proxy"]["environment"]
    assert allowed["DOCKER_GUARD_IMAGES"] == services["user-code"]["image"]
    assert allowed["DOCKER_GUARD_NETWORKS"] == spec["networks"]["mlplatform"]["name"]
    (volume,) = launcher["container_kwargs"]["volumes"]
    assert allowed["DOCKER_GUARD_VOLUMES"] == volume.split(":")[0]
    # Exactly the daemon and the webserver are told where the Docker API is.
    docker_hosts = {
        name: service["environment"]["DOCKER_HOST"]
        for name, service in services.items()
        if "DOCKER_HOST" in service.get("environment", {})
    }
    assert docker_hosts == {client: f"tcp://{p}:2375" for client, p in PROXY_OF.items()}


def test_step_containers_get_the_proxy():
    """With MLPLATFORM_EXECUTOR=docker (and only then) the deploy script adds the step-container
    file: runs get DOCKER_HOST through the code location's container context and reach the
    launcher's proxy on the platform network; still no socket, and no section opened."""
    base = merged_compose("docker-compose.yaml")["services"]
    steps = merged_compose("docker-compose.yaml", "docker-compose.step-containers.yaml")
    services = steps["services"]
    context = json.loads(services["user-code"]["environment"]["DAGSTER_CONTAINER_CONTEXT"])
    assert context == {"docker": {"env_vars": ["DOCKER_HOST=tcp://docker-proxy:2375"]}}
    assert "DAGSTER_CONTAINER_CONTEXT" not in base["user-code"]["environment"]
    assert set(services["docker-proxy"]["networks"]) == {"docker-proxy", "mlplatform"}
    assert set(base["docker-proxy"]["networks"]) == {"docker-proxy"}
    assert services["docker-proxy"]["environment"] == base["docker-proxy"]["environment"]
    # dagster-docker accepts the context, and runs then carry DOCKER_HOST; nothing else changes.
    from dagster_docker.container_context import DockerContainerContext

    parsed = DockerContainerContext.create_from_config(context)
    assert parsed.env_vars == ["DOCKER_HOST=tcp://docker-proxy:2375"]
    assert not parsed.container_kwargs and not parsed.networks

    def without_network_details(service: dict) -> dict:
        # docker-compose v1 prints a network without settings as {} or null, and volumes in
        # another order, depending on the file they came from.
        return {
            **service,
            "networks": sorted(service.get("networks") or []),
            "volumes": sorted(service.get("volumes") or []),
        }

    for name in set(base) - {"user-code", "docker-proxy"}:
        assert without_network_details(services[name]) == without_network_details(base[name])


def test_prometheus_scrapes_the_exporter_service_with_the_shipped_rules():
    services = compose()["services"]
    exporter = services["metrics-exporter"]["command"]
    port = exporter[exporter.index("--port") + 1]
    mount = next(v for v in services["prometheus"]["volumes"] if v.endswith(":/etc/prometheus:ro"))
    folder = (DOCKER / mount.split(":")[0]).resolve()
    config = yaml.safe_load((folder / "prometheus.yml").read_text())
    targets = [
        t for job in config["scrape_configs"] for c in job["static_configs"] for t in c["targets"]
    ]
    assert targets == [f"metrics-exporter:{port}"]
    assert all((folder / rules).exists() for rules in config["rule_files"])
    # The exporter reads the same instance database and registry as the rest of the platform,
    # with the read-only role.
    exporter = services["metrics-exporter"]["environment"]
    daemon = services["daemon"]["environment"]
    differing = {k for k in exporter.keys() | daemon.keys() if exporter.get(k) != daemon.get(k)}
    assert differing == {
        "DAGSTER_POSTGRES_USER", "DAGSTER_POSTGRES_PASSWORD", "DOCKER_HOST",
        "MLFLOW_TRACKING_USERNAME", "MLFLOW_TRACKING_PASSWORD",
    }  # fmt: skip
    assert exporter["DAGSTER_POSTGRES_USER"].startswith("${DAGSTER_READER_POSTGRES_USER")
    assert exporter["MLFLOW_TRACKING_USERNAME"].startswith("${MLFLOW_READER_USERNAME")


def test_env_example_names_every_variable_compose_reads():
    text = (DOCKER / "docker-compose.yaml").read_text()
    interpolated = set(re.findall(r"\$\{([A-Z0-9_]+)", text))
    example = env_example()
    assert interpolated <= set(example), sorted(interpolated - set(example))
    # Secrets are placeholders, never real values.
    for key, value in example.items():
        if "PASSWORD" in key or "WEBHOOK" in key or "SECRET" in key:
            assert value in ("", "change-me"), key
    assert not (DOCKER / ".env").exists() or ".env" in (PROJECT / ".gitignore").read_text()


def test_step_containers_take_image_and_limits_from_settings():
    from mlplatform.automation.execution import docker_executor_config, job_executor

    settings = load_orchestration(
        environ={
            "MLPLATFORM_EXECUTOR": "docker",
            "MLPLATFORM_STEP_MEMORY_LIMIT": "6Gi",
            "MLPLATFORM_STEP_CPUS": "1.5",
        }
    )
    config = docker_executor_config(settings.execution)
    # The image is the code location's own (dagster-docker prefers it to any executor setting).
    assert "image" not in config
    assert config["container_kwargs"] == {"mem_limit": 6 * 2**30, "nano_cpus": 1_500_000_000}
    executor = job_executor(settings.execution)
    assert executor is not None and executor.name == "step_containers"
    # dagster-docker accepts this configuration as its own.
    from dagster_docker import docker_executor

    from mlplatform.automation.execution import CHAMPION_LANE_LIMIT

    lane = {**config, "tag_concurrency_limits": CHAMPION_LANE_LIMIT}
    processed = dg._config.process_config(docker_executor.config_schema.config_type, lane)
    assert processed.success, processed.errors
    # Locally: a process per step, forked from a server that preloaded the platform.
    local = job_executor(load_orchestration(environ={}).execution)
    assert local.name == "multiprocess"


def test_docker_readme_names_every_file():
    readmes = (DOCKER / "README.md").read_text() + (DOCKER / "k8s" / "README.md").read_text()
    for path in CHECKED_FILES:
        assert Path(path).name in readmes, path


def test_helm_values_match_the_compose_stack():
    values = yaml.safe_load((DOCKER / "k8s" / "values.yaml").read_text())
    (deployment,) = values["dagster-user-deployments"]["deployments"]
    services = compose()["services"]
    # The same image as the compose stack's (there: mlplatform:TAG; here: pushed to a registry).
    compose_image = re.fullmatch(
        r"\$\{MLPLATFORM_IMAGE:-([^:}]+):[^}]+\}", services["user-code"]["image"]
    )
    assert deployment["image"]["repository"].rsplit("/", 1)[-1] == compose_image.group(1)
    assert deployment["dagsterApiGrpcArgs"] == ["-m", "mlplatform.definitions", "-a", "defs"]
    assert values["runLauncher"]["type"] == "K8sRunLauncher"
    run_coordinator = values["dagsterDaemon"]["runCoordinator"]
    assert run_coordinator["type"] == "QueuedRunCoordinator"
    assert values["postgresql"]["postgresqlScheme"] == "postgresql+psycopg2"
    # The same platform environment as the compose stack, with the data on an object store.
    environment = {item["name"]: item.get("value") for item in deployment["env"]}
    assert environment["MLPLATFORM_DATA_DIR"].startswith("s3://")
    assert environment["MLFLOW_TRACKING_URI"].startswith("http")
    from mlplatform.automation.execution import job_executor

    k8s = load_orchestration(environ={"MLPLATFORM_EXECUTOR": environment["MLPLATFORM_EXECUTOR"]})
    assert job_executor(k8s.execution).name == "k8s"
    # Steps are sized by their own tags: the training step's pod asks for what settings say.
    from mlplatform.definitions import defs

    tags = defs.resolve_assets_def("trained_model").op.tags
    needs = load_orchestration(environ={}).step_resources["training"]
    assert f'"memory": "{needs.memory}"' in tags["dagster-k8s/config"]
    assert f'"cpu": "{needs.cpu_limit}"' in tags["dagster-k8s/config"]


# --- the deploy script, through a stand-in for the Docker client -----------------------------

FAKE_DOCKER = r"""#!/usr/bin/env bash
# Stands in for the Docker client: records every call; `compose config` is checked by the real
# docker-compose v1, `compose exec` runs the command on this machine, health comes from a file.
echo "$*" >> "$FAKE_DOCKER_LOG"
case "$1" in
  info) exit 0 ;;
  inspect) state_file="$FAKE_DOCKER_STATE.${@: -1}"
           if [ -s "$state_file" ]; then head -n 1 "$state_file"; sed -i 1d "$state_file";
           else echo healthy; fi; exit 0 ;;
  compose)
    shift
    [ "$1" = version ] && exit 0
    args=("$@"); command=""; rest=()
    i=0
    while [ $i -lt ${#args[@]} ]; do
      case "${args[$i]}" in
        --project-directory|-f|--env-file) i=$((i+2)); continue ;;
      esac
      if [ -z "$command" ]; then command="${args[$i]}"; else rest+=("${args[$i]}"); fi
      i=$((i+1))
    done
    if [ "$command" = "${FAKE_DOCKER_FAIL:-none}" ]; then
      echo "fake $command failed" >&2; exit 1
    fi
    case "$command" in
      config) exec "$REAL_DOCKER_COMPOSE" "$@" ;;
      ps) echo "container-${rest[-1]}" ;;
      exec) exec "${rest[@]:2}" ;;
    esac
    exit 0 ;;
esac
exit 0
"""


@pytest.fixture
def fake_docker(tmp_path):
    real_compose = require_executable("docker-compose", "docker-compose")
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    (bin_dir / "docker").write_text(FAKE_DOCKER)
    (bin_dir / "docker").chmod(0o755)
    env_file = tmp_path / "deploy.env"
    log = tmp_path / "docker.log"
    environ = {
        **os.environ,
        "PATH": f"{bin_dir}:{BIN}:{os.environ['PATH']}",
        "FAKE_DOCKER_LOG": str(log),
        "FAKE_DOCKER_STATE": str(tmp_path / "state"),
        "REAL_DOCKER_COMPOSE": real_compose,
        "MLPLATFORM_ENV_FILE": str(env_file),
        "MLPLATFORM_DEPLOY_TIMEOUT": "20",
        "DAGSTER_HOME": str(tmp_path / "dagster_home"),
    }
    (tmp_path / "dagster_home").mkdir()

    def deploy(**extra: str) -> subprocess.CompletedProcess:
        return subprocess.run(
            [str(DOCKER / "deploy-pipeline.sh")], env={**environ, **extra},
            capture_output=True, text=True, timeout=300, cwd=tmp_path,
        )  # fmt: skip

    deploy.log = log  # type: ignore[attr-defined]
    deploy.env_file = env_file  # type: ignore[attr-defined]
    deploy.state = tmp_path / "state"  # type: ignore[attr-defined]
    return deploy


def test_deploy_script_stands_the_stack_up(fake_docker):
    # mlflow reports `starting` twice before it is healthy: the script waits for it.
    (fake_docker.state.parent / "state.container-mlflow").write_text("starting\nstarting\n")
    # MLflow's accounts are made by a service that exits: status 0 is done, not a failure.
    (fake_docker.state.parent / "state.container-mlflow-users").write_text("exited\n0\n")
    result = fake_docker()
    assert result.returncode == 0, result.stdout + result.stderr
    assert "mlflow-users: done" in result.stdout
    calls = fake_docker.log.read_text().splitlines()
    commands = [re.sub(r"--project-directory \S+ -f \S+ --env-file \S+ ", "", c) for c in calls]
    order = [
        next(i for i, c in enumerate(commands) if c.startswith(prefix))
        for prefix in ("compose config -q", "compose build user-code", "compose up -d",
                       "compose exec -T user-code dagster definitions validate")
    ]  # fmt: skip
    assert order == sorted(order)
    assert sum(c == "inspect -f" or c.startswith("inspect") for c in commands) >= 7
    assert "http://127.0.0.1:3000" in result.stdout
    # Fresh random passwords, private to the owner, no placeholder left.
    env_text = fake_docker.env_file.read_text()
    assert "change-me" not in env_text
    assert re.search(r"^DAGSTER_POSTGRES_PASSWORD=[0-9a-f]{48}$", env_text, flags=re.M)
    assert fake_docker.env_file.stat().st_mode & 0o077 == 0


def test_deploy_script_stops_at_the_first_failure(fake_docker):
    result = fake_docker(FAKE_DOCKER_FAIL="build")
    assert result.returncode != 0
    assert "FAILED: the image did not build" in result.stderr
    assert not any(" up " in line for line in fake_docker.log.read_text().splitlines())


def test_deploy_script_reports_an_unhealthy_service(fake_docker):
    (fake_docker.state.parent / "state.container-user-code").write_text("unhealthy\n")
    result = fake_docker()
    assert result.returncode != 0
    assert "FAILED: user-code is unhealthy" in result.stderr
    assert "definitions validate" not in fake_docker.log.read_text()


def test_deploy_script_reports_a_failed_one_shot_service(fake_docker):
    (fake_docker.state.parent / "state.container-mlflow-users").write_text("exited\n1\n")
    result = fake_docker()
    assert result.returncode != 0
    assert "FAILED: mlflow-users is exited" in result.stderr


def test_deploy_script_refuses_placeholder_passwords(fake_docker):
    fake_docker.env_file.write_text((DOCKER / ".env.example").read_text())
    result = fake_docker()
    assert result.returncode != 0
    assert "'change-me' password" in result.stderr
    assert "build" not in fake_docker.log.read_text()


# --- production instance and MLflow server, for real -----------------------------------------


class Deployment:
    """PostgreSQL with Dagster's and MLflow's databases (made by the compose stack's own init
    script), an MLflow server backed by it, and one pipeline run through the Dagster CLI with
    docker/dagster.yaml as its instance."""

    def __init__(self, root: Path, postgres: PostgresServer, mlflow_url: str, artifacts: Path):
        self.root = root
        self.postgres = postgres
        self.mlflow_url = mlflow_url
        self.artifacts = artifacts
        self.home = root / "dagster_home"
        self.result: subprocess.CompletedProcess | None = None

    def environment(self) -> dict[str, str]:
        """What a run container gets: the launcher's env_vars (here with this machine's values),
        the image's DAGSTER_HOME, and a PATH; nothing else of this test process."""
        every = {
            "DAGSTER_HOME": str(self.home),
            "DAGSTER_POSTGRES_HOST": self.postgres.host,
            "DAGSTER_POSTGRES_PORT": str(self.postgres.port),
            # The role the compose stack gives runs: Dagster's database's owner, no superuser.
            "DAGSTER_POSTGRES_USER": "dagster",
            "DAGSTER_POSTGRES_PASSWORD": "unused-with-trust-auth",
            "DAGSTER_POSTGRES_DB": "dagster",
            "MLPLATFORM_DOCKER_NETWORK": "mlplatform-network",
            "MLFLOW_TRACKING_URI": self.mlflow_url,
            "MLFLOW_TRACKING_USERNAME": MLFLOW_ACCOUNTS["MLFLOW_PLATFORM_USERNAME"],
            "MLFLOW_TRACKING_PASSWORD": MLFLOW_ACCOUNTS["MLFLOW_PLATFORM_PASSWORD"],
            "MLFLOW_READER_USERNAME": MLFLOW_ACCOUNTS["MLFLOW_READER_USERNAME"],
            "MLFLOW_READER_PASSWORD": MLFLOW_ACCOUNTS["MLFLOW_READER_PASSWORD"],
            "MLPLATFORM_MLFLOW_ARTIFACTS": "mlflow-artifacts:/mlplatform",
            "MLPLATFORM_DATA_DIR": str(self.root / "data"),
            "MLFLOW_ALLOW_PICKLE_DESERIALIZATION": "false",
        }
        instance = yaml.safe_load((DOCKER / "dagster.yaml").read_text())
        passed = set(instance["run_launcher"]["config"]["env_vars"]) | {"DAGSTER_HOME"}
        missing = set(every) - passed
        assert not missing, f"the launcher would not pass {sorted(missing)}"
        # One OpenMP thread, as in every process of the test session (conftest.py): two test
        # workers share two cores. A machine's setting, not the deployment's.
        return {**every, "PATH": os.environ["PATH"], "HOME": str(self.root), "OMP_NUM_THREADS": "1"}

    def connect(self, database: str, user: str | None = None):
        return psycopg2.connect(
            host=self.postgres.host, port=self.postgres.port, user=user or self.postgres.user,
            dbname=database,
        )  # fmt: skip


# MLflow's accounts as docker/.env sets them (test values).
MLFLOW_ACCOUNTS = {
    "MLFLOW_ADMIN_USERNAME": "admin", "MLFLOW_ADMIN_PASSWORD": "admin-secret-4",
    "MLFLOW_PLATFORM_USERNAME": "platform", "MLFLOW_PLATFORM_PASSWORD": "platform-secret-5",
    "MLFLOW_READER_USERNAME": "reader", "MLFLOW_READER_PASSWORD": "reader-secret-6",
}  # fmt: skip


def as_mlflow_user(monkeypatch, account: str | None, password: str | None = None) -> None:
    """Be MLflow's `platform` or `reader` account (with its password unless another is given),
    or nobody: MLflow's client takes the account from the environment at every request."""
    if account is None:
        monkeypatch.delenv("MLFLOW_TRACKING_USERNAME", raising=False)
        monkeypatch.delenv("MLFLOW_TRACKING_PASSWORD", raising=False)
        return
    prefix = f"MLFLOW_{account.upper()}"
    monkeypatch.setenv("MLFLOW_TRACKING_USERNAME", MLFLOW_ACCOUNTS[f"{prefix}_USERNAME"])
    password = password or MLFLOW_ACCOUNTS[f"{prefix}_PASSWORD"]
    monkeypatch.setenv("MLFLOW_TRACKING_PASSWORD", password)


# What the postgres service passes to create-databases.sh (docker-compose.yaml), with test values.
INIT_ROLES = {
    "DAGSTER_POSTGRES_USER": "dagster", "DAGSTER_POSTGRES_PASSWORD": "dagster-secret-1",
    "DAGSTER_POSTGRES_DB": "dagster",
    "DAGSTER_READER_POSTGRES_USER": "dagster_reader",
    "DAGSTER_READER_POSTGRES_PASSWORD": "reader-secret-2",
    "MLFLOW_POSTGRES_USER": "mlflow", "MLFLOW_POSTGRES_PASSWORD": "mlflow-secret-3",
    "MLFLOW_POSTGRES_DB": "mlflow",
}  # fmt: skip


def test_mlflow_accounts_service_has_the_platforms_registry_settings():
    """create-users.py names the experiment and registered model from the platform's settings:
    the service must have the values the platform's own services have."""
    services = compose()["services"]
    users, daemon = services["mlflow-users"]["environment"], services["daemon"]["environment"]
    shared = {k for k in users if k.startswith("MLPLATFORM_") or k == "MLFLOW_TRACKING_URI"}
    assert {"MLPLATFORM_DATASET", "MLPLATFORM_MLFLOW_EXPERIMENT"} <= shared
    assert {k: users[k] for k in shared} == {k: daemon[k] for k in shared}


def test_runs_get_the_reader_account_mlflow_users_makes():
    """Scoring reads the registry as MLflow's read-only account: every Dagster service has it
    (the launcher reads what it passes from the daemon's or webserver's environment), runs get it,
    and it is the account the mlflow-users service creates, from docker/.env's own variables."""
    services = compose()["services"]
    launcher = yaml.safe_load((DOCKER / "dagster.yaml").read_text())["run_launcher"]["config"]
    reader = ("MLFLOW_READER_USERNAME", "MLFLOW_READER_PASSWORD")
    assert set(reader) <= set(launcher["env_vars"])
    users = services["mlflow-users"]["environment"]
    for service in ("user-code", "daemon", "webserver"):
        environment = services[service]["environment"]
        for name in reader:
            assert environment[name] == users[name], (service, name)
            assert environment[name].startswith("${" + name), (service, name)
        # ... beside the platform's own account, which training needs.
        assert environment["MLFLOW_TRACKING_USERNAME"].startswith("${MLFLOW_PLATFORM_USERNAME")


def test_definitions_name_the_reader_account_never_hold_its_password(monkeypatch):
    """The code location gives the MLflow resource the reader account as EnvVars, resolved where
    a step runs (and shown in the UI by name); without the variables (local, no
    authentication) it has none and scoring uses the process's own account."""
    from mlplatform.config.settings import load_settings
    from mlplatform.definitions import build_resources

    monkeypatch.delenv("MLFLOW_READER_USERNAME", raising=False)
    monkeypatch.delenv("MLFLOW_READER_PASSWORD", raising=False)
    local = build_resources(load_settings())["mlflow"]
    assert local.reader_username is None and local.reader_password is None

    monkeypatch.setenv("MLFLOW_READER_USERNAME", "reader")
    monkeypatch.setenv("MLFLOW_READER_PASSWORD", "reader-secret-in-env")
    deployed = build_resources(load_settings())["mlflow"]
    assert isinstance(deployed.reader_password, dg.EnvVar)
    assert deployed.reader_username.env_var_name == "MLFLOW_READER_USERNAME"
    assert deployed.reader_password.env_var_name == "MLFLOW_READER_PASSWORD"
    assert "reader-secret-in-env" not in repr(deployed)


def reading_resource(**account: Any):
    from mlplatform.resources.mlflow import MlflowResource

    return MlflowResource(
        tracking_uri="http://127.0.0.1:1", artifact_location="mlflow-artifacts:/mlplatform",
        experiment_name="mlplatform", **account,
    )  # fmt: skip


def test_reading_goes_as_the_reader_and_puts_the_account_back_in_process(monkeypatch):
    """With the in-process executor every step shares one environment: inside `reading()` MLflow's
    client sees the reader account, after it (also when the block raised) the platform's again,
    for the steps that write."""
    from mlplatform.resources.mlflow import MlflowResource
    from mlplatform.resources.mlflow_accounts import reader_account_from_environment

    monkeypatch.setenv("MLFLOW_TRACKING_USERNAME", "platform")
    monkeypatch.setenv("MLFLOW_TRACKING_PASSWORD", "platform-secret")
    monkeypatch.setenv("MLFLOW_READER_USERNAME", "reader")
    monkeypatch.setenv("MLFLOW_READER_PASSWORD", "reader-secret")
    account = ("MLFLOW_TRACKING_USERNAME", "MLFLOW_TRACKING_PASSWORD")
    seen: dict[str, tuple] = {}

    @dg.asset
    def scores(mlflow: MlflowResource) -> None:
        with mlflow.reading():
            seen["inside"] = tuple(os.environ.get(name) for name in account)
        seen["after"] = tuple(os.environ.get(name) for name in account)

    @dg.asset(deps=[scores])
    def scores_that_fail(mlflow: MlflowResource) -> None:
        with mlflow.reading():
            raise RuntimeError("the champion would not load")

    result = dg.materialize(
        [scores, scores_that_fail],
        resources={"mlflow": reading_resource(**reader_account_from_environment())},
        raise_on_error=False,
    )
    assert not result.success
    (failure,) = [event for event in result.all_events if event.is_step_failure]
    assert "the champion would not load" in str(failure.step_failure_data.error)
    assert seen == {"inside": ("reader", "reader-secret"), "after": ("platform", "platform-secret")}
    assert tuple(os.environ.get(name) for name in account) == ("platform", "platform-secret")

    # Without a platform account before (a local store), none after.
    monkeypatch.delenv("MLFLOW_TRACKING_USERNAME")
    monkeypatch.delenv("MLFLOW_TRACKING_PASSWORD")
    with (
        pytest.raises(RuntimeError),
        reading_resource(reader_username="reader", reader_password="reader-secret").reading(),
    ):
        assert os.environ["MLFLOW_TRACKING_USERNAME"] == "reader"
        raise RuntimeError("failed while reading")
    assert not {name for name in account if name in os.environ}


def test_reading_without_a_reader_account_changes_nothing(monkeypatch):
    monkeypatch.setenv("MLFLOW_TRACKING_USERNAME", "platform")
    with reading_resource().reading():
        assert os.environ["MLFLOW_TRACKING_USERNAME"] == "platform"
    # Half an account is a settings mistake, named, not a silent fall back to the platform's.
    half = reading_resource(reader_username="reader")
    with pytest.raises(dg.Failure, match="reader_password is not set") as refused, half.reading():
        pass
    assert refused.value.allow_retries is False
    assert os.environ["MLFLOW_TRACKING_USERNAME"] == "platform"


def test_init_script_gets_every_role_from_the_postgres_service():
    postgres = compose()["services"]["postgresql"]["environment"]
    assert set(INIT_ROLES) <= set(postgres)
    script = (DOCKER / "postgres" / "create-databases.sh").read_text()
    assert set(INIT_ROLES) <= set(re.findall(r"\$\{?([A-Z_]+)", script))
    # The superuser is the cluster's own and no platform service logs in as it.
    superuser = postgres["POSTGRES_USER"]
    for name, service in compose()["services"].items():
        user = service.get("environment", {}).get("DAGSTER_POSTGRES_USER")
        assert user is None or user != superuser, name


@pytest.fixture(scope="module")
def deployment(tmp_path_factory) -> Deployment:
    require_executable("psql", "postgresql-client")
    root = tmp_path_factory.mktemp("deployment")
    with postgres_server() as postgres:
        # The compose stack's init script, as the postgres image runs it on an empty volume.
        created = run_tool(
            str(DOCKER / "postgres" / "create-databases.sh"),
            env={**os.environ, "PGHOST": postgres.host, "PGPORT": str(postgres.port),
                 "POSTGRES_USER": postgres.user, "POSTGRES_DB": "postgres", **INIT_ROLES},
        )  # fmt: skip
        assert created.returncode == 0, created.stdout + created.stderr
        # Passwords go into the roles, never into the script's output.
        for key, value in INIT_ROLES.items():
            if key.endswith("PASSWORD"):
                assert value not in created.stdout + created.stderr

        # The MLflow server as the compose stack configures it, on 127.0.0.1: the same command,
        # basic authentication with the same settings (its user store in this test's folder).
        port, artifacts = free_port(), root / "mlflow-artifacts"
        mlflow_service = compose()["services"]["mlflow"]
        service = mlflow_service["environment"]
        auth_config = root / "basic_auth.ini"
        auth_config.write_text(
            (DOCKER / "mlflow" / "basic_auth.ini")
            .read_text()
            .replace("sqlite:////mlflow/basic_auth.db", f"sqlite:///{root}/basic_auth.db")
        )
        mlflow_env = {
            **os.environ,
            **{k: str(v) for k, v in service.items() if not k.startswith("MLFLOW_BACKEND")},
            "MLFLOW_AUTH_CONFIG_PATH": str(auth_config),
            "MLFLOW_AUTH_ADMIN_USERNAME": MLFLOW_ACCOUNTS["MLFLOW_ADMIN_USERNAME"],
            "MLFLOW_AUTH_ADMIN_PASSWORD": MLFLOW_ACCOUNTS["MLFLOW_ADMIN_PASSWORD"],
            "MLFLOW_FLASK_SERVER_SECRET_KEY": "test-secret-key",
            "MLFLOW_HOST": "127.0.0.1",
            "MLFLOW_PORT": str(port),
            "MLFLOW_WORKERS": "1",
            "MLFLOW_BACKEND_STORE_URI": (
                f"postgresql+psycopg2://mlflow@{postgres.host}:{postgres.port}/mlflow"
            ),
            "MLFLOW_ARTIFACTS_DESTINATION": str(artifacts),
            "MLFLOW_SERVER_ALLOWED_HOSTS": f"127.0.0.1,127.0.0.1:{port}",
        }
        log = root / "mlflow-server.log"
        command = [str(BIN / "mlflow"), *mlflow_service["command"][1:]]
        server = start_process(command, log, env=mlflow_env, cwd=root)
        try:
            url = f"http://127.0.0.1:{port}"
            wait_until(lambda: http_ok(f"{url}/health"), 180, "the MLflow server", server, log)
            deployment = Deployment(root, postgres, url, artifacts)
            # The mlflow-users service: the admin makes the platform's and the reader's accounts,
            # and the platform's account the experiment and registered model its settings name.
            users = compose()["services"]["mlflow-users"]
            script = DOCKER / users["volumes"][0].split(":")[0]
            accounts = run_tool(
                str(BIN / "python"), str(script), cwd=PROJECT,
                env={**deployment.environment(), **MLFLOW_ACCOUNTS,
                     "MLFLOW_TRACKING_USERNAME": MLFLOW_ACCOUNTS["MLFLOW_ADMIN_USERNAME"],
                     "MLFLOW_TRACKING_PASSWORD": MLFLOW_ACCOUNTS["MLFLOW_ADMIN_PASSWORD"]},
            )  # fmt: skip
            assert accounts.returncode == 0, accounts.stdout + accounts.stderr
            assert "platform: created" in accounts.stdout and "reader: created" in accounts.stdout
            assert "card_transactions_classifier' ready" in accounts.stdout
            for key, value in MLFLOW_ACCOUNTS.items():
                if key.endswith("PASSWORD"):
                    assert value not in accounts.stdout + accounts.stderr
            deployment.home.mkdir()
            shutil.copy(DOCKER / "dagster.yaml", deployment.home / "dagster.yaml")
            deployment.result = subprocess.run(
                [str(BIN / "dagster"), "asset", "materialize", "-m", "mlplatform.definitions",
                 "--select", "*", "--partition", DAY],
                cwd=PROJECT, env=deployment.environment(), capture_output=True, text=True,
                timeout=900,
            )  # fmt: skip
            yield deployment
        finally:
            stop_process_group(server)


@pytest.mark.slow
def test_production_instance_in_postgresql(deployment):
    result = deployment.result
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    # The run and its events, read back from the database itself.
    with deployment.connect("dagster") as connection, connection.cursor() as cursor:
        cursor.execute("SELECT run_id, status, pipeline_name FROM runs")
        ((run_id, status, job_name),) = cursor.fetchall()
        assert status == "SUCCESS"
        cursor.execute(
            "SELECT dagster_event_type, count(*) FROM event_logs WHERE run_id = %s "
            "GROUP BY dagster_event_type",
            (run_id,),
        )
        counts = dict(cursor.fetchall())
        cursor.execute(
            "SELECT DISTINCT asset_key FROM event_logs "
            "WHERE run_id = %s AND dagster_event_type = 'ASSET_MATERIALIZATION'",
            (run_id,),
        )
        materialized = {row[0] for row in cursor.fetchall()}
        # The assets' own log messages are kept beside the JSON stream (python_logs at INFO).
        cursor.execute(
            "SELECT count(*) FROM event_logs WHERE run_id = %s AND event LIKE %s",
            (run_id, "%promoted to champion%"),
        )
        (promotion_messages,) = cursor.fetchone()
    events = dg.DagsterEventType
    # Stored under Dagster's own event type names (RUN_SUCCESS is kept as PIPELINE_SUCCESS).
    assert counts[events.RUN_SUCCESS.value] == 1
    assert counts[events.ASSET_MATERIALIZATION.value] == len(ALL_ASSETS)
    assert counts[events.ASSET_CHECK_EVALUATION.value] >= 19
    assert {dg.AssetKey(name).to_string() for name in ALL_ASSETS} == materialized
    assert promotion_messages == 1
    # The production instance logs every line as JSON, carrying the run id, for a log collector.
    logged = [json.loads(line) for line in result.stderr.splitlines() if line.startswith("{")]
    assert logged and all(entry["run_id"] == run_id for entry in logged)
    # A multi-asset's second output logs under its step, the first.
    assert {entry["asset"] for entry in logged} >= set(ALL_ASSETS) - {
        "quarantined_transactions", "quarantined_outcomes",
    }  # fmt: skip
    # The same instance, through Dagster's own API, sees that run with its partition.
    environment = deployment.environment()
    saved = {key: os.environ.get(key) for key in environment}
    os.environ.update(environment)
    try:
        with dg.DagsterInstance.get() as instance:
            assert type(instance.run_launcher).__name__ == "DockerRunLauncher"
            assert type(instance.run_coordinator).__name__ == "QueuedRunCoordinator"
            run = instance.get_run_by_id(run_id)
            assert run.tags["dagster/partition"] == DAY and run.job_name == job_name
            for name in ALL_ASSETS:
                event = instance.get_latest_materialization_event(dg.AssetKey(name))
                assert event is not None and event.run_id == run_id, name
    finally:
        for key, value in saved.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value


@pytest.mark.slow
def test_model_registered_through_the_mlflow_server(deployment, monkeypatch):
    from mlflow.tracking import MlflowClient

    assert deployment.result.returncode == 0, deployment.result.stderr[-3000:]
    # Everything here only reads: the reader's account is enough, scoring included.
    as_mlflow_user(monkeypatch, "reader")
    client = MlflowClient(tracking_uri=deployment.mlflow_url, registry_uri=deployment.mlflow_url)
    (model,) = client.search_registered_models()
    champion = client.get_model_version_by_alias(model.name, "champion")
    challenger = client.get_model_version_by_alias(model.name, "challenger")
    assert champion.version == challenger.version == "1"
    # The server keeps the registry in PostgreSQL and the artifacts in its own store.
    with deployment.connect("mlflow") as connection, connection.cursor() as cursor:
        cursor.execute("SELECT alias, version FROM registered_model_aliases")
        assert sorted(cursor.fetchall()) == [("challenger", 1), ("champion", 1)]
    assert any(deployment.artifacts.rglob("MLmodel"))
    assert not any(PROJECT.glob("mlruns")) and not any(deployment.root.glob("mlruns"))
    # Loaded by alias through the server, the champion scores the day's features.
    import pandas as pd

    from mlplatform.resources.mlflow import MlflowResource

    registry = MlflowResource(
        tracking_uri=deployment.mlflow_url,
        artifact_location="mlflow-artifacts:/mlplatform",
        experiment_name="mlplatform",
    )
    model_uri = f"models:/{model.name}@champion"
    loaded = registry.load_sklearn_model(model_uri)
    (features_file,) = (deployment.root / "data" / "features").rglob(f"{DAY}*")
    features = pd.read_parquet(features_file)
    scores = loaded.predict_proba(features[registry.model_input_columns(model_uri)].head(100))[:, 1]
    assert len(scores) == 100 and ((scores >= 0) & (scores <= 1)).all()


@pytest.mark.slow
def test_every_role_owns_its_database_and_nothing_more(deployment):
    """The roles create-databases.sh made, after the pipeline ran as `dagster`: none is a
    superuser or may create roles or databases, none may enter another's database, and the
    exporter's role reads the instance but cannot change it."""
    roles = [INIT_ROLES[k] for k in INIT_ROLES if k.endswith("_USER")]
    with deployment.connect("postgres") as connection, connection.cursor() as cursor:
        cursor.execute(
            "SELECT rolname, rolsuper, rolcreaterole, rolcreatedb, rolreplication, rolbypassrls "
            "FROM pg_roles WHERE rolname = ANY(%s)",
            (roles,),
        )
        rows = cursor.fetchall()
        assert sorted(row[0] for row in rows) == sorted(roles)
        assert all(not any(row[1:]) for row in rows), rows
        cursor.execute(
            "SELECT datname, pg_get_userbyid(datdba) FROM pg_database "
            "WHERE datname IN ('dagster', 'mlflow')"
        )
        assert dict(cursor.fetchall()) == {"dagster": "dagster", "mlflow": "mlflow"}
    for user, database in [("dagster", "mlflow"), ("mlflow", "dagster"),
                           ("dagster_reader", "mlflow")]:  # fmt: skip
        with pytest.raises(psycopg2.OperationalError, match="permission denied for database"):
            deployment.connect(database, user).close()
    connection = deployment.connect("dagster", "dagster")
    connection.autocommit = True
    with connection.cursor() as cursor, pytest.raises(psycopg2.errors.InsufficientPrivilege):
        cursor.execute("CREATE DATABASE another")
    connection.close()
    reader = deployment.connect("dagster", "dagster_reader")
    with reader.cursor() as cursor:
        cursor.execute("SELECT count(*) FROM runs")
        assert cursor.fetchone() == (1,)
        with pytest.raises(psycopg2.errors.InsufficientPrivilege):
            cursor.execute("DELETE FROM runs")
    reader.close()
    # The exporter, as compose runs it, with the read-only role: one scrape of the instance.
    environment = {**deployment.environment(), "DAGSTER_POSTGRES_USER": "dagster_reader"}
    scrape = subprocess.run(
        [str(BIN / "mlplatform"), "exporter", "--once", "--no-mlflow"],
        env=environment, capture_output=True, text=True, timeout=300, cwd=deployment.root,
    )  # fmt: skip
    assert scrape.returncode == 0, scrape.stdout[-2000:] + scrape.stderr[-3000:]
    assert 'status="SUCCESS"' in scrape.stdout


@pytest.mark.slow
def test_only_the_platform_account_moves_an_alias(deployment, monkeypatch):
    """MLflow as deployed (basic_auth.ini, the accounts create-users.py made): nobody without a
    password reads or moves `champion`, the reader reads it but cannot move it, and the platform's
    account, which registered the model in the pipeline run, can."""
    from mlflow.exceptions import MlflowException
    from mlflow.tracking import MlflowClient

    assert deployment.result.returncode == 0, deployment.result.stderr[-3000:]
    monkeypatch.setenv("MLFLOW_HTTP_REQUEST_MAX_RETRIES", "0")
    client = MlflowClient(tracking_uri=deployment.mlflow_url, registry_uri=deployment.mlflow_url)
    as_mlflow_user(monkeypatch, "platform")
    (model,) = client.search_registered_models()
    champion = client.get_model_version_by_alias(model.name, "champion")

    as_mlflow_user(monkeypatch, None)
    with pytest.raises(MlflowException, match="401"):
        client.set_registered_model_alias(model.name, "champion", champion.version)
    with pytest.raises(MlflowException, match="401"):
        client.get_model_version_by_alias(model.name, "champion")
    as_mlflow_user(monkeypatch, "reader", password="a wrong password")
    with pytest.raises(MlflowException, match="401"):
        client.get_model_version_by_alias(model.name, "champion")

    as_mlflow_user(monkeypatch, "reader")
    assert client.get_model_version_by_alias(model.name, "champion").version == champion.version
    for move in (
        lambda: client.set_registered_model_alias(model.name, "champion", champion.version),
        lambda: client.delete_registered_model_alias(model.name, "champion"),
        lambda: client.delete_registered_model(model.name),
    ):
        with pytest.raises(MlflowException, match="403"):
            move()

    as_mlflow_user(monkeypatch, "platform")
    client.set_registered_model_alias(model.name, "champion", champion.version)
    assert client.get_model_version_by_alias(model.name, "champion").version == champion.version
    # The platform's account is not an admin: it cannot make accounts for itself.
    from mlflow.server.auth.client import AuthServiceClient

    with pytest.raises(MlflowException, match="403"):
        AuthServiceClient(deployment.mlflow_url).create_user("intruder", "intruder-password-1")


@pytest.mark.slow
def test_scoring_reads_the_registry_as_the_reader(deployment, monkeypatch):
    """batch_scores talks to MLflow as the read-only account, in a run as deployed: it scores with
    the platform's password wrong and the reader's right, and fails without retry, naming the
    account and never a password, with the reader's wrong; inside `reading()` a write is refused.
    (After the tests that count the fixture's one run: this one adds runs.)"""
    from mlflow.exceptions import MlflowException
    from mlflow.tracking import MlflowClient

    assert deployment.result.returncode == 0, deployment.result.stderr[-3000:]
    monkeypatch.setenv("MLFLOW_HTTP_REQUEST_MAX_RETRIES", "0")
    wrong_platform, wrong_reader = "wrong-platform-password-7", "wrong-reader-password-8"
    passwords = [wrong_platform, wrong_reader] + [
        value for key, value in MLFLOW_ACCOUNTS.items() if key.endswith("PASSWORD")
    ]
    client = MlflowClient(tracking_uri=deployment.mlflow_url, registry_uri=deployment.mlflow_url)
    as_mlflow_user(monkeypatch, "platform")
    (model,) = client.search_registered_models()
    champion = client.get_model_version_by_alias(model.name, "champion")
    # The platform's account with the wrong password is refused: what scores below is the reader.
    as_mlflow_user(monkeypatch, "platform", password=wrong_platform)
    with pytest.raises(MlflowException, match="401"):
        client.get_model_version_by_alias(model.name, "champion")

    # The resource itself, in this process: the reader reads, cannot write, and a wrong password
    # is named as the reader's.
    from mlplatform.resources.mlflow import MlflowResource

    def resource(password: str) -> MlflowResource:
        return MlflowResource(
            tracking_uri=deployment.mlflow_url, artifact_location="mlflow-artifacts:/mlplatform",
            experiment_name="mlplatform", reader_username="reader", reader_password=password,
        )  # fmt: skip

    reader = resource(MLFLOW_ACCOUNTS["MLFLOW_READER_PASSWORD"])
    with reader.reading():
        assert reader.current_champion(model.name).version == champion.version
        reader.load_with_inputs(f"models:/{model.name}/{champion.version}")
    forbidden = r"'reader' \(HTTP 403: not allowed"
    with pytest.raises(dg.Failure, match=forbidden) as refused, reader.reading():
        reader.set_alias(model.name, "champion", champion.version)
    assert refused.value.allow_retries is False
    wrong = resource(wrong_reader)
    unauthenticated = r"'reader' \(HTTP 401: wrong user or password"
    with pytest.raises(dg.Failure, match=unauthenticated) as refused, wrong.reading():
        wrong.current_champion(model.name)
    shown = refused.value.description + "".join(
        str(error) for error in (refused.value.__cause__, refused.value.__context__)
    )
    assert not [password for password in passwords if password in shown]
    assert os.environ["MLFLOW_TRACKING_PASSWORD"] == wrong_platform  # put back as it was

    def score(**changed: str) -> subprocess.CompletedProcess:
        return subprocess.run(
            [str(BIN / "dagster"), "asset", "materialize", "-m", "mlplatform.definitions",
             "--select", "batch_scores", "--partition", DAY],
            cwd=PROJECT, env={**deployment.environment(), **changed}, capture_output=True,
            text=True, timeout=900,
        )  # fmt: skip

    scored = score(MLFLOW_TRACKING_PASSWORD=wrong_platform)
    assert scored.returncode == 0, scored.stdout[-3000:] + scored.stderr[-3000:]
    assert f"{model.name} v{champion.version} scored" in scored.stderr

    refused_run = score(MLFLOW_READER_PASSWORD=wrong_reader)
    shown = refused_run.stdout + refused_run.stderr
    assert refused_run.returncode != 0
    assert "refused the reader account 'reader' (HTTP 401" in shown, shown[-3000:]
    assert not [password for password in passwords if password in shown]
    # Nor in what the instance keeps (the UI shows the event log).
    with deployment.connect("dagster") as connection, connection.cursor() as cursor:
        cursor.execute(
            "SELECT count(*) FROM event_logs WHERE event LIKE %s", ("%refused the reader account%",)
        )
        assert cursor.fetchone()[0] >= 1
        for password in passwords:
            cursor.execute(
                "SELECT count(*) FROM event_logs WHERE event LIKE %s", (f"%{password}%",)
            )
            assert cursor.fetchone() == (0,), password


@pytest.mark.slow
def test_an_unreachable_database_does_not_show_its_password(tmp_path):
    """The production instance with its database down: the error Dagster raises (and the
    SQLAlchemy and psycopg2 errors chained to it) names host and port, never the password."""
    home = tmp_path / "dagster_home"
    home.mkdir()
    shutil.copy(DOCKER / "dagster.yaml", home / "dagster.yaml")
    password = "p4ss/w@rd-that-must-not-show"
    script = (
        "import traceback, dagster as dg\n"
        "try:\n    dg.DagsterInstance.get()\n"
        "except Exception as error:\n    print(''.join(traceback.format_exception(error)))\n"
    )
    environment = {
        **os.environ, "DAGSTER_HOME": str(home), "DAGSTER_POSTGRES_HOST": "127.0.0.1",
        "DAGSTER_POSTGRES_PORT": str(free_port()), "DAGSTER_POSTGRES_USER": "dagster",
        "DAGSTER_POSTGRES_PASSWORD": password, "DAGSTER_POSTGRES_DB": "dagster",
        "MLPLATFORM_DOCKER_NETWORK": "mlplatform-network",
    }  # fmt: skip
    result = run_tool(str(BIN / "python"), "-c", script, env=environment)
    shown = result.stdout + result.stderr
    assert "DagsterPostgresException" in shown and "127.0.0.1" in shown, shown[-2000:]
    assert password not in shown and "p4ss" not in shown
