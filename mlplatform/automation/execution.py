"""Where steps run: the executor chosen in orchestration.yaml (`execution`). What each step needs
is its stage's (`mlplatform.stages`)."""

import re
from typing import Any

import dagster as dg

from mlplatform.config.active import ORCHESTRATION
from mlplatform.config.orchestration import ExecutionSettings
from mlplatform.stages.definition import CHAMPION_LANE, CHAMPION_LANE_TAG

_MEMORY_UNITS = {"": 1, "Ki": 2**10, "Mi": 2**20, "Gi": 2**30, "Ti": 2**40}


def memory_bytes(quantity: str) -> int:
    """A Kubernetes memory quantity ("512Mi", "8Gi") in bytes, the unit Docker's mem_limit takes."""
    match = re.fullmatch(r"(\d+(?:\.\d+)?)(Ki|Mi|Gi|Ti)?", quantity)
    if match is None:
        raise ValueError(f"'{quantity}' is not a memory quantity like 512Mi or 8Gi")
    return int(float(match.group(1)) * _MEMORY_UNITS[match.group(2) or ""])


def docker_executor_config(settings: ExecutionSettings) -> dict[str, Any]:
    """dagster-docker's executor config for step containers. Their environment, network and
    volumes come from the run launcher and the code location (dagster-docker merges them)."""
    container = settings.step_container
    config: dict[str, Any] = {
        "container_kwargs": {
            "mem_limit": memory_bytes(container.memory_limit),
            "nano_cpus": int(container.cpus * 1e9),
        },
    }
    return config


# One step of the champion lane at a time in a run (see mlplatform.stages.definition).
CHAMPION_LANE_LIMIT = [{"key": CHAMPION_LANE_TAG, "value": CHAMPION_LANE, "limit": 1}]


def job_executor(settings: ExecutionSettings = ORCHESTRATION.execution) -> dg.ExecutorDefinition:
    """The executor every job uses, as chosen in orchestration.yaml (`execution`)."""
    if settings.executor == "k8s":
        # Each step in its own Kubernetes Job, sized by its stage's `dagster-k8s/config` tag.
        from dagster_k8s import k8s_job_executor

        return k8s_job_executor.configured(
            {"tag_concurrency_limits": CHAMPION_LANE_LIMIT}, name="k8s"
        )
    if settings.executor == "docker":
        # Imported only when chosen: the Docker SDK is not needed anywhere else.
        from dagster_docker import docker_executor

        return docker_executor.configured(
            {**docker_executor_config(settings), "tag_concurrency_limits": CHAMPION_LANE_LIMIT},
            name="step_containers",
        )
    if settings.executor == "in_process":
        return dg.in_process_executor
    multiprocess = settings.multiprocess
    start_method: dict[str, Any] = {"spawn": {}}
    if multiprocess.start_method == "forkserver":
        start_method = {"forkserver": {"preload_modules": list(multiprocess.preload_modules)}}
    return dg.multiprocess_executor.configured(
        {
            "max_concurrent": multiprocess.max_concurrent,
            "start_method": start_method,
            "tag_concurrency_limits": CHAMPION_LANE_LIMIT,
        },
        name="multiprocess",
    )
