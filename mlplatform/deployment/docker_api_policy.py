"""The policy of the Docker API guard (`docker_api_guard`): which calls each profile may make, and
the only containers the launcher may create. Pure: no socket, no I/O; the one fact it needs from
the engine, what a container is, comes from the `lookup` it is given.

Profiles, each the calls its client makes and nothing else:

- `launcher`, for dagster-daemon (DockerRunLauncher: launch, run monitoring, terminate) and, with
  docker-compose.step-containers.yaml, the docker executor in run containers:
  GET|HEAD /_ping, GET /version (docker-py's API version detection), POST /containers/create
  (a validated body), GET /containers/{id}/json, POST /containers/{id}/start, /stop (query `t`)
  and /wait (the executor's step health check). No image pull (no registry; the launcher would
  try one only after "image not found"), no network connect (the launcher connects a second
  network only when given several; the platform gives one), no exec, logs, archive, export.
- `stopper`, for dagster-webserver (Terminate in the UI): GET|HEAD /_ping, GET /version,
  GET /containers/{id}/json and POST /containers/{id}/stop.

Container calls are allowed only for containers labelled as runs (`com.mlplatform.role=run`,
docker/dagster.yaml): the guard looks the container up first and then acts on that container's
full id, never on the name it was given. Inspect is answered by the guard itself with only what
the clients read (id, name, image, state, labels, tty): no Env (passwords), no Cmd, no mounts.

Only create carries a body, validated and re-serialised by `docker_create_body`. Paths are plain
names (no "..", no escapes) and API versions before 1.24 are refused: those engines also read a
HostConfig (Privileged, Binds) from the body of a start.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any
from urllib.parse import parse_qsl, urlencode

from mlplatform.deployment.docker_create_body import NAME, Allowed, Refused, create_body

PROFILES = ("launcher", "stopper")
RUN_LABEL = ("com.mlplatform.role", "run")
# Before API 1.24 the engine reads a HostConfig from the body of POST /containers/{id}/start.
MIN_API_VERSION = (1, 24)

_SEGMENT = re.compile(r"[A-Za-z0-9_][A-Za-z0-9_.-]{0,254}")
_CONTAINER_ID = re.compile(r"[0-9a-f]{64}")
_VERSIONED = re.compile(r"/v([0-9]{1,2})\.([0-9]{1,3})(/.*)")

# (method, route) each profile may call; a route is what `_route` names a path.
ALLOWED_CALLS = {
    "launcher": {
        ("GET", "ping"), ("HEAD", "ping"), ("GET", "version"), ("POST", "create"),
        ("GET", "inspect"), ("POST", "start"), ("POST", "stop"), ("POST", "wait"),
    },
    "stopper": {
        ("GET", "ping"), ("HEAD", "ping"), ("GET", "version"), ("GET", "inspect"),
        ("POST", "stop"),
    },
}  # fmt: skip
_CONTAINER_ACTIONS = {"json": "inspect", "start": "start", "stop": "stop", "wait": "wait"}
_WAIT_CONDITIONS = {"not-running", "next-exit", "removed"}
# Seconds the guard waits for the engine's answer: stop waits up to `t`, wait until the end.
DEFAULT_TIMEOUT = 120.0
WAIT_TIMEOUT = 3600.0


@dataclass(frozen=True)
class Rules:
    """What a profile allows. `images`, `networks` and `volumes` matter to the launcher only."""

    profile: str
    images: frozenset[str] = frozenset()
    networks: frozenset[str] = frozenset()
    volumes: frozenset[str] = frozenset()
    run_label: tuple[str, str] = RUN_LABEL

    def __post_init__(self) -> None:
        if self.profile not in PROFILES:
            raise ValueError(f"unknown profile {self.profile!r}: one of {', '.join(PROFILES)}")
        if self.profile == "launcher" and not (self.images and self.networks):
            raise ValueError("the launcher profile needs the allowed images and networks")
        for name in self.networks | self.volumes:
            if not NAME.fullmatch(name) or name.casefold() == "endpointsconfig":
                raise ValueError(f"{name!r} is not a network or volume name")

    @property
    def allowed(self) -> Allowed:
        return Allowed(self.images, self.networks, self.volumes, self.run_label)

    @classmethod
    def from_environ(cls, profile: str, environ: Mapping[str, str]) -> Rules:
        """DOCKER_GUARD_IMAGES, _NETWORKS and _VOLUMES: names separated by commas or spaces;
        DOCKER_GUARD_RUN_LABEL: key=value (com.mlplatform.role=run)."""

        def names(key: str) -> frozenset[str]:
            return frozenset(re.split(r"[,\s]+", environ.get(key, "").strip())) - {""}

        key, _, value = environ.get("DOCKER_GUARD_RUN_LABEL", "=".join(RUN_LABEL)).partition("=")
        if not key or not value:
            raise ValueError("DOCKER_GUARD_RUN_LABEL must be key=value")
        return cls(
            profile=profile,
            images=names("DOCKER_GUARD_IMAGES"),
            networks=names("DOCKER_GUARD_NETWORKS"),
            volumes=names("DOCKER_GUARD_VOLUMES"),
            run_label=(key, value),
        )


@dataclass(frozen=True)
class Looked:
    """A container as the engine describes it (GET /containers/{id}/json): its attributes, or
    the engine's status and message when it has none (404: no such container)."""

    status: int
    attrs: dict[str, Any] | None
    message: str = ""


Lookup = Callable[[str], Looked]


@dataclass(frozen=True)
class Decision:
    """Refused (`allowed` false: `status` and `reason` are the answer), answered by the guard
    itself (`answer`), or forwarded to the engine as `method`, `target` and `body`."""

    allowed: bool
    reason: str
    status: int = 200
    method: str = ""
    target: str = ""
    body: bytes | None = None
    answer: dict[str, Any] | None = None
    timeout: float = DEFAULT_TIMEOUT


def decide(
    rules: Rules, method: str, path: str, query: str, body: bytes | None, lookup: Lookup
) -> Decision:
    """Allow or refuse one call. `path` may carry the /v1.xx prefix; `query` is the raw query."""
    try:
        return _decide(rules, method.upper(), path, query, body or b"", lookup)
    except Refused as refused:
        return Decision(allowed=False, reason=refused.reason, status=refused.status)


def _decide(
    rules: Rules, method: str, path: str, query: str, body: bytes, lookup: Lookup
) -> Decision:
    prefix, parts = split_path(path)
    route, container = _route(parts)
    if (method, route) not in ALLOWED_CALLS[rules.profile]:
        raise Refused(f"{method} {'/'.join(['', *parts])} is not allowed ({rules.profile})")
    params = _query(query)
    if route != "create" and body:
        raise Refused(f"{method} {route} takes no body")
    if route in ("ping", "version"):
        _only_params(params, {})
        return Decision(True, route, method=method, target=prefix + "/" + parts[0])
    if route == "create":
        _only_params(params, {"name": _container_name})
        name = f"?{urlencode(params)}" if params else ""
        canonical = create_body(rules.allowed, body)
        return Decision(
            True, "create", method=method, target=f"{prefix}/containers/create{name}",
            body=canonical,
        )  # fmt: skip
    assert container is not None
    if route == "stop":
        _only_params(params, {"t": _stop_seconds})
    elif route == "wait":
        _only_params(params, {"condition": _wait_condition})
    else:
        _only_params(params, {})
    attrs = run_container(rules, container, lookup)
    if route == "inspect":
        return Decision(True, "inspect", answer=visible_container(attrs))
    timeout = DEFAULT_TIMEOUT
    if route == "stop":
        timeout += float(params.get("t", 10))
    elif route == "wait":
        timeout = WAIT_TIMEOUT
    suffix = f"?{urlencode(params)}" if params else ""
    return Decision(
        True, route, method=method, timeout=timeout,
        target=f"{prefix}/containers/{attrs['Id']}/{parts[2]}{suffix}",
    )  # fmt: skip


def split_path(path: str) -> tuple[str, list[str]]:
    """The API version prefix ("/v1.41" or "") and the path's segments, each a plain name."""
    prefix = ""
    versioned = _VERSIONED.fullmatch(path)
    if versioned:
        version = (int(versioned.group(1)), int(versioned.group(2)))
        if version < MIN_API_VERSION:
            raise Refused(f"API version {version[0]}.{version[1]} is older than 1.24")
        prefix, path = f"/v{version[0]}.{version[1]}", versioned.group(3)
    parts = path.split("/")[1:] if path.startswith("/") else []
    if not parts or not all(_SEGMENT.fullmatch(part) for part in parts):
        raise Refused(f"path {path[:200]!r} is not a plain Docker API path")
    return prefix, parts


def _route(parts: list[str]) -> tuple[str, str | None]:
    if parts in (["_ping"], ["version"]):
        return parts[0].strip("_"), None
    if parts == ["containers", "create"]:
        return "create", None
    if len(parts) == 3 and parts[0] == "containers" and parts[2] in _CONTAINER_ACTIONS:
        if not NAME.fullmatch(parts[1]):
            raise Refused(f"{parts[1][:80]!r} is not a container name or id")
        return _CONTAINER_ACTIONS[parts[2]], parts[1]
    return "/".join(["", *parts]), None


def _query(query: str) -> dict[str, str]:
    try:
        pairs = parse_qsl(query, keep_blank_values=True, strict_parsing=bool(query))
    except ValueError:
        raise Refused("the query string is malformed") from None
    params: dict[str, str] = {}
    for key, value in pairs:
        if key in params:
            raise Refused(f"query parameter {key[:40]!r} is given twice")
        params[key] = value
    return params


def _only_params(params: dict[str, str], allowed: dict[str, Callable[[str], None]]) -> None:
    for key, value in params.items():
        if key not in allowed:
            raise Refused(f"query parameter {key[:40]!r} is not allowed here")
        allowed[key](value)


def _container_name(value: str) -> None:
    if not NAME.fullmatch(value):
        raise Refused(f"{value[:80]!r} is not a container name")


def _stop_seconds(value: str) -> None:
    if not re.fullmatch(r"[0-9]{1,4}", value) or int(value) > 3600:
        raise Refused("stop's t must be a number of seconds from 0 to 3600")


def _wait_condition(value: str) -> None:
    if value not in _WAIT_CONDITIONS:
        raise Refused(f"wait condition {value[:40]!r} is not allowed")


def run_container(rules: Rules, container: str, lookup: Lookup) -> dict[str, Any]:
    """The container's attributes when it is a run container; refused otherwise (404 when the
    engine knows no such container, as the engine itself answers)."""
    looked = lookup(container)
    if looked.attrs is None:
        status = looked.status if 400 <= looked.status < 600 else 502
        raise Refused(looked.message or f"No such container: {container}", status)
    key, value = rules.run_label
    labels = (looked.attrs.get("Config") or {}).get("Labels") or {}
    if labels.get(key) != value:
        raise Refused(f"container {container!r} is not a run container ({key}={value})")
    if not _CONTAINER_ID.fullmatch(str(looked.attrs.get("Id", ""))):
        raise Refused("the engine gave no container id", 502)
    return looked.attrs


def visible_container(attrs: Mapping[str, Any]) -> dict[str, Any]:
    """What a client sees of a container: what docker-py's Container and the launcher read
    (id, name, image, state, labels, tty). Env and Cmd (passwords, the instance's
    settings), mounts, networks and a health check's output stay with the engine."""
    config = attrs.get("Config") or {}
    state = attrs.get("State")
    if isinstance(state, dict):
        state = {key: value for key, value in state.items() if key != "Health"}
        health = (attrs.get("State") or {}).get("Health")
        if isinstance(health, dict):
            state["Health"] = {"Status": health.get("Status")}
    return {
        "Id": attrs.get("Id"),
        "Created": attrs.get("Created"),
        "Name": attrs.get("Name"),
        "Image": attrs.get("Image"),
        "RestartCount": attrs.get("RestartCount", 0),
        "State": state,
        # Tty: docker-py reads it before it looks at the answer to a logs call.
        "Config": {
            "Image": config.get("Image"),
            "Labels": config.get("Labels") or {},
            "Tty": bool(config.get("Tty")),
        },
    }
