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
    "trained_model", "registered_model_version", "batch_scores",
]  # fmt: skip

# Every file under docker/ and the test that reads it: nothing there is dead configuration.
CHECKED_FILES = {
    "docker/Dockerfile": "test_dockerfile_passes_hadolint",
    "docker/Dockerfile.dockerignore": "test_build_context_holds_what_the_dockerfile_copies",
    "docker/docker-compose.yaml": "test_compose_file_is_valid_for_docker_compose",
    "docker/.env.example": "test_env_example_names_every_variable_compose_reads",
    "docker/dagster.yaml": "test_production_instance_in_postgresql",
    "docker/workspace.yaml": "test_workspace_points_at_the_code_server",
    "docker/deploy-pipeline.sh": "test_deploy_script_stands_the_stack_up",
    "docker/postgres/create-databases.sh": "test_production_instance_in_postgresql",
    "docker/README.md": "test_docker_readme_names_every_file",
    "docker/k8s/values.yaml": "test_helm_values_match_the_compose_stack",
    "docker/k8s/README.md": "test_docker_readme_names_every_file",
}


def compose() -> dict[str, Any]:
    return yaml.safe_load((DOCKER / "docker-compose.yaml").read_text())


def env_example() -> dict[str, str]:
    values = {}
    for line in (DOCKER / ".env.example").read_text().splitlines():
        if line and not line.startswith("#"):
            key, _, value = line.partition("=")
            values[key] = value
    return values


def run_tool(*command: str, **kwargs: Any) -> subprocess.CompletedProcess:
    return subprocess.run(command, capture_output=True, text=True, timeout=120, **kwargs)


# --- offline validation ---------------------------------------------------------------------


def test_every_file_under_docker_is_checked():
    present = {
        str(path.relative_to(PROJECT))
        for path in DOCKER.rglob("*")
        if path.is_file() and path.name != ".env"
    }
    assert present == set(CHECKED_FILES), "unchecked or missing files under docker/"
    tests = set(globals())
    assert set(CHECKED_FILES.values()) <= tests


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
        str(DOCKER / "docker-compose.yaml"),
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
    # The code location's container context replaces the launcher's container_kwargs for its runs
    # (a shallow merge): it must keep the data volume, and bring the Docker socket and its group
    # for step containers.
    command = services["user-code"]["command"]
    context = json.loads(command[command.index("--container-context") + 1])
    location_kwargs = context["docker"]["container_kwargs"]
    assert volume in location_kwargs["volumes"]
    assert "/var/run/docker.sock:/var/run/docker.sock" in location_kwargs["volumes"]
    assert location_kwargs["group_add"] == ["${DOCKER_GID:-999}"]
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
            assert condition == {"condition": "service_healthy"}, (name, dependency)
            assert "healthcheck" in services[dependency], dependency
    # The MLflow server accepts the host name the platform reaches it by.
    tracking = services["daemon"]["environment"]["MLFLOW_TRACKING_URI"]
    host = re.match(r"https?://([^/]+)", tracking).group(1)
    allowed = services["mlflow"]["environment"]["MLFLOW_SERVER_ALLOWED_HOSTS"].split(",")
    assert host in allowed and host.split(":")[0] in allowed
    assert services["mlflow"]["environment"]["MLFLOW_SERVER_ENABLE_JOB_EXECUTION"] == "false"


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
    # The exporter reads the same instance database and registry as the rest of the platform.
    assert services["metrics-exporter"]["environment"] == services["daemon"]["environment"]


def test_env_example_names_every_variable_compose_reads():
    text = (DOCKER / "docker-compose.yaml").read_text()
    interpolated = set(re.findall(r"\$\{([A-Z0-9_]+)", text))
    example = env_example()
    assert interpolated <= set(example), sorted(interpolated - set(example))
    # Secrets are placeholders, never real values.
    for key, value in example.items():
        if "PASSWORD" in key or "WEBHOOK" in key:
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

    processed = dg._config.process_config(docker_executor.config_schema.config_type, config)
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
    result = fake_docker()
    assert result.returncode == 0, result.stdout + result.stderr
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
            "DAGSTER_POSTGRES_USER": self.postgres.user,
            "DAGSTER_POSTGRES_PASSWORD": "unused-with-trust-auth",
            "DAGSTER_POSTGRES_DB": "dagster",
            "MLPLATFORM_DOCKER_NETWORK": "mlplatform-network",
            "MLFLOW_TRACKING_URI": self.mlflow_url,
            "MLPLATFORM_MLFLOW_ARTIFACTS": "mlflow-artifacts:/mlplatform",
            "MLPLATFORM_DATA_DIR": str(self.root / "data"),
            "MLFLOW_ALLOW_PICKLE_DESERIALIZATION": "false",
        }
        instance = yaml.safe_load((DOCKER / "dagster.yaml").read_text())
        passed = set(instance["run_launcher"]["config"]["env_vars"]) | {"DAGSTER_HOME"}
        missing = set(every) - passed
        assert not missing, f"the launcher would not pass {sorted(missing)}"
        return {**every, "PATH": os.environ["PATH"], "HOME": str(self.root)}

    def connect(self, database: str):
        return psycopg2.connect(
            host=self.postgres.host, port=self.postgres.port, user=self.postgres.user,
            dbname=database,
        )  # fmt: skip


@pytest.fixture(scope="module")
def deployment(tmp_path_factory) -> Deployment:
    require_executable("psql", "postgresql-client")
    root = tmp_path_factory.mktemp("deployment")
    with postgres_server() as postgres:
        # The compose stack's init script, as the postgres image runs it on an empty volume.
        postgres.create_database("dagster")
        created = run_tool(
            str(DOCKER / "postgres" / "create-databases.sh"),
            env={
                **os.environ, "PGHOST": postgres.host, "PGPORT": str(postgres.port),
                "POSTGRES_USER": postgres.user, "POSTGRES_DB": "dagster",
                "MLFLOW_POSTGRES_USER": "mlflow", "MLFLOW_POSTGRES_PASSWORD": "secret",
                "MLFLOW_POSTGRES_DB": "mlflow",
            },
        )  # fmt: skip
        assert created.returncode == 0, created.stdout + created.stderr

        # The MLflow server as the compose stack configures it, on 127.0.0.1.
        port, artifacts = free_port(), root / "mlflow-artifacts"
        service = compose()["services"]["mlflow"]["environment"]
        mlflow_env = {
            **os.environ,
            **{k: str(v) for k, v in service.items() if not k.startswith("MLFLOW_BACKEND")},
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
        server = start_process([str(BIN / "mlflow"), "server"], log, env=mlflow_env, cwd=root)
        try:
            url = f"http://127.0.0.1:{port}"
            wait_until(lambda: http_ok(f"{url}/health"), 180, "the MLflow server", server, log)
            deployment = Deployment(root, postgres, url, artifacts)
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
    assert {entry["asset"] for entry in logged} >= set(ALL_ASSETS) - {"quarantined_transactions"}
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
def test_model_registered_through_the_mlflow_server(deployment):
    from mlflow.tracking import MlflowClient

    assert deployment.result.returncode == 0, deployment.result.stderr[-3000:]
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
