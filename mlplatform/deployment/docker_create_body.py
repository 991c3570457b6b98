"""The one kind of container the Docker API guard lets the launcher create (see
`docker_api_policy`).

A create body is parsed here and re-serialised, never forwarded as sent, and may hold only:

- top level: Image (one of the configured images), Cmd, Env, Labels (with the run label),
  Volumes (only the targets of the allowed mounts), StopTimeout, the attach/tty booleans,
  NetworkDisabled, HostConfig and NetworkingConfig. Docker 20.10 also reads HostConfig's fields
  at the top level when there is no HostConfig (a deprecated embedded struct; seen on this
  machine's engine), so e.g. a top-level "Privileged" is refused like any key not listed;
- HostConfig: NetworkMode (the configured network), Binds and Mounts of configured named volumes
  only, resource limits (Memory, MemorySwap, MemoryReservation, NanoCpus, CpuShares, CpuQuota,
  CpuPeriod, CpusetCpus, PidsLimit, ShmSize), Privileged only false, ReadonlyRootfs, Init,
  CapDrop, and SecurityOpt only no-new-privileges. Never CapAdd, Devices, PidMode, IpcMode,
  UsernsMode, Runtime, LogConfig, host paths, or volume driver options (a `local` volume with
  o=bind is a host mount too).

Keys must be spelled exactly as Docker documents them. Go's JSON decoder matches struct keys
without case (with Unicode folding: U+017F, a long s, is an "s") and keeps the last duplicate, so
a body holding both "HostConfig" and "hostconfig" could mean one thing here and another to the
engine: any two keys of an object equal without case are refused, and escapes are decoded
before names are compared ("\\u0050rivileged" is "Privileged").
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from typing import Any

# The largest create body accepted (a run's command holds its serialised job origin).
MAX_BODY_BYTES = 4 * 2**20
NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,254}")
_TARGET = re.compile(r"/[A-Za-z0-9_.@+/-]*")
_CPUSET = re.compile(r"[0-9,-]{0,64}")


class Refused(Exception):
    """A call the guard does not allow: `reason` says why (no secret in it)."""

    def __init__(self, reason: str, status: int = 403):
        super().__init__(reason)
        self.reason = reason
        self.status = status


@dataclass(frozen=True)
class Allowed:
    """What a created container may be: its image, its network, the named volumes it may mount
    and the label (key, value) every run container carries."""

    images: frozenset[str]
    networks: frozenset[str]
    volumes: frozenset[str]
    run_label: tuple[str, str]


def parse_json(body: bytes) -> Any:
    """JSON as the engine will read it, or refused: UTF-8 only, no NaN, and no two keys of one
    object equal without case (Go matches keys so and takes the last)."""
    if len(body) > MAX_BODY_BYTES:
        raise Refused(f"the body is larger than {MAX_BODY_BYTES} bytes")
    try:
        text = body.decode("utf-8")
    except UnicodeDecodeError:
        raise Refused("the body is not UTF-8") from None

    def unique(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
        seen: set[str] = set()
        for key, _ in pairs:
            folded = key.casefold()
            if folded in seen:
                raise Refused(f"key {key[:80]!r} appears twice (Docker compares keys without case)")
            seen.add(folded)
        return dict(pairs)

    def constant(name: str) -> Any:
        raise Refused(f"{name} is not JSON")

    try:
        return json.loads(text, object_pairs_hook=unique, parse_constant=constant)
    except json.JSONDecodeError as error:
        raise Refused(f"the body is not JSON ({error.msg})") from None
    except RecursionError:
        raise Refused("the body is nested too deeply") from None


def create_body(rules: Allowed, body: bytes) -> bytes:
    """The create body to send the engine: the validated request, re-serialised."""
    config = _object(parse_json(body), "the create body")
    _known(config, _TOP_KEYS, "the create body")
    if not _one_of(config.get("Image"), rules.images):
        raise Refused(f"image {str(config.get('Image'))[:120]!r} is not allowed")
    host = _host_config(rules, _object(config.get("HostConfig"), "HostConfig"))
    labels = _labels(config.get("Labels"))
    key, value = rules.run_label
    if labels.get(key) != value:
        raise Refused(f"a container must carry the label {key}={value}")
    out: dict[str, Any] = {"Image": config["Image"], "Labels": labels}
    for name in _BOOLEANS:
        if name in config:
            out[name] = _boolean(config[name], name)
    if config.get("Cmd") is not None:
        out["Cmd"] = _strings(config["Cmd"], "Cmd")
    if config.get("Env") is not None:
        out["Env"] = _strings(config["Env"], "Env")
    if config.get("StopTimeout") is not None:
        out["StopTimeout"] = _integer(config["StopTimeout"], "StopTimeout", 0, 3600)
    targets = {bind.split(":")[1] for bind in host.get("Binds", [])}
    targets |= {mount["Target"] for mount in host.get("Mounts", [])}
    if config.get("Volumes") is not None:
        volumes = _object(config["Volumes"], "Volumes")
        for target, options in volumes.items():
            if target not in targets or options != {}:
                raise Refused(f"Volumes names {target[:80]!r}, not an allowed mount's target")
        out["Volumes"] = {target: {} for target in volumes}
    out["HostConfig"] = host
    networking = _networking(rules, config.get("NetworkingConfig"), host["NetworkMode"])
    if networking is not None:
        out["NetworkingConfig"] = networking
    return json.dumps(out, ensure_ascii=True, allow_nan=False).encode("ascii")


_BOOLEANS = (
    "Tty", "OpenStdin", "StdinOnce", "AttachStdin", "AttachStdout", "AttachStderr",
    "NetworkDisabled",
)  # fmt: skip
_TOP_KEYS = {
    "Image", "Cmd", "Env", "Labels", "Volumes", "StopTimeout", "HostConfig", "NetworkingConfig",
    *_BOOLEANS,
}  # fmt: skip
# Resource limits: numbers, each with its lowest value (-1: unlimited where Docker takes it).
_LIMITS = {
    "Memory": 0, "MemorySwap": -1, "MemoryReservation": 0, "NanoCpus": 0, "CpuShares": 0,
    "CpuQuota": 0, "CpuPeriod": 0, "PidsLimit": -1, "ShmSize": 0,
}  # fmt: skip
_HOST_KEYS = {
    "NetworkMode", "Binds", "Mounts", "CpusetCpus", "Privileged", "ReadonlyRootfs", "Init",
    "CapDrop", "SecurityOpt", *_LIMITS,
}  # fmt: skip
_NO_NEW_PRIVILEGES = {"no-new-privileges", "no-new-privileges:true", "no-new-privileges=true"}
_BIND_OPTIONS = {"ro", "rw", "nocopy"}


def _host_config(rules: Allowed, host: dict[str, Any]) -> dict[str, Any]:
    _known(host, _HOST_KEYS, "HostConfig")
    if not _one_of(host.get("NetworkMode"), rules.networks):
        raise Refused(f"NetworkMode {str(host.get('NetworkMode'))[:80]!r} is not allowed")
    out: dict[str, Any] = {"NetworkMode": host["NetworkMode"]}
    if host.get("Binds") is not None:
        out["Binds"] = [_bind(rules, bind) for bind in _strings(host["Binds"], "Binds")]
    if host.get("Mounts") is not None:
        mounts = host["Mounts"]
        if not isinstance(mounts, list):
            raise Refused("Mounts must be a list")
        out["Mounts"] = [_mount(rules, mount) for mount in mounts]
    for name, lowest in _LIMITS.items():
        if host.get(name) is not None:
            out[name] = _integer(host[name], name, lowest, 2**62)
    if host.get("CpusetCpus") is not None:
        if not isinstance(host["CpusetCpus"], str) or not _CPUSET.fullmatch(host["CpusetCpus"]):
            raise Refused("CpusetCpus must be a CPU list such as 0-1")
        out["CpusetCpus"] = host["CpusetCpus"]
    if host.get("Privileged") is not None:
        if host["Privileged"] is not False:
            raise Refused("privileged containers are not allowed")
        out["Privileged"] = False
    for name in ("ReadonlyRootfs", "Init"):
        if host.get(name) is not None:
            out[name] = _boolean(host[name], name)
    if host.get("CapDrop") is not None:
        out["CapDrop"] = _strings(host["CapDrop"], "CapDrop")
        if not all(re.fullmatch(r"[A-Za-z_]{1,40}", cap) for cap in out["CapDrop"]):
            raise Refused("CapDrop must list capability names")
    if host.get("SecurityOpt") is not None:
        out["SecurityOpt"] = _strings(host["SecurityOpt"], "SecurityOpt")
        if not set(out["SecurityOpt"]) <= _NO_NEW_PRIVILEGES:
            raise Refused("SecurityOpt may only be no-new-privileges")
    return out


def _bind(rules: Allowed, bind: str) -> str:
    parts = bind.split(":")
    if len(parts) not in (2, 3) or parts[0] not in rules.volumes:
        raise Refused(f"bind {bind[:120]!r} is not a mount of an allowed named volume")
    _target(parts[1])
    if len(parts) == 3 and not set(parts[2].split(",")) <= _BIND_OPTIONS:
        raise Refused(f"bind options {parts[2][:40]!r} are not allowed")
    return bind


def _mount(rules: Allowed, mount: Any) -> dict[str, Any]:
    mount = _object(mount, "a mount")
    _known(mount, {"Type", "Source", "Target", "ReadOnly", "VolumeOptions"}, "a mount")
    if mount.get("Type") != "volume":
        raise Refused(f"mounts of type {str(mount.get('Type'))[:20]!r} are not allowed")
    if not _one_of(mount.get("Source"), rules.volumes):
        raise Refused(f"volume {str(mount.get('Source'))[:80]!r} is not allowed")
    out = {"Type": "volume", "Source": mount["Source"], "Target": _target(mount.get("Target"))}
    if mount.get("ReadOnly") is not None:
        out["ReadOnly"] = _boolean(mount["ReadOnly"], "ReadOnly")
    if mount.get("VolumeOptions") is not None:
        options = _object(mount["VolumeOptions"], "VolumeOptions")
        _known(options, {"NoCopy"}, "VolumeOptions (no driver options)")
        if "NoCopy" in options:
            out["VolumeOptions"] = {"NoCopy": _boolean(options["NoCopy"], "NoCopy")}
    return out


def _target(target: Any) -> str:
    if (
        not isinstance(target, str)
        or not _TARGET.fullmatch(target)
        or any(part in (".", "..") for part in target.split("/"))
    ):
        raise Refused(f"mount target {str(target)[:80]!r} is not an absolute path")
    return target


def _networking(rules: Allowed, networking: Any, network: str) -> dict[str, Any] | None:
    """Only the network of NetworkMode. docker-py sends {"<network>": null}, which the engine
    ignores (no EndpointsConfig key): it is left out."""
    if networking is None:
        return None
    networking = _object(networking, "NetworkingConfig")
    if "EndpointsConfig" not in networking:
        if set(networking) <= {network} and all(v is None for v in networking.values()):
            return None
        raise Refused("NetworkingConfig may name only the container's network")
    _known(networking, {"EndpointsConfig"}, "NetworkingConfig")
    endpoints = _object(networking["EndpointsConfig"], "EndpointsConfig")
    if set(endpoints) != {network}:
        raise Refused("EndpointsConfig may name only the container's network")
    endpoint = endpoints[network]
    if endpoint is None:
        return {"EndpointsConfig": {network: {}}}
    endpoint = _object(endpoint, "an endpoint")
    _known(endpoint, {"Aliases"}, "an endpoint")
    out: dict[str, Any] = {}
    if endpoint.get("Aliases") is not None:
        out["Aliases"] = _strings(endpoint["Aliases"], "Aliases")
        if not all(NAME.fullmatch(alias) for alias in out["Aliases"]):
            raise Refused("Aliases must be names")
    return {"EndpointsConfig": {network: out}}


def _labels(labels: Any) -> dict[str, str]:
    labels = _object(labels, "Labels")
    if not all(isinstance(value, str) for value in labels.values()):
        raise Refused("Labels must map names to text")
    return dict(labels)


def _one_of(value: Any, allowed: frozenset[str]) -> bool:
    return isinstance(value, str) and value in allowed


def _known(value: dict[str, Any], allowed: set[str], where: str) -> None:
    for key in value:
        if key not in allowed:
            raise Refused(f"key {key[:80]!r} is not allowed in {where}")


def _object(value: Any, what: str) -> dict[str, Any]:
    if not isinstance(value, dict):
        raise Refused(f"{what} must be a JSON object")
    return value


def _strings(value: Any, what: str) -> list[str]:
    if not isinstance(value, list) or not all(isinstance(item, str) for item in value):
        raise Refused(f"{what} must be a list of text")
    return list(value)


def _boolean(value: Any, what: str) -> bool:
    if not isinstance(value, bool):
        raise Refused(f"{what} must be true or false")
    return value


def _integer(value: Any, what: str, lowest: int, highest: int) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or not lowest <= value <= highest:
        raise Refused(f"{what} must be a whole number from {lowest} to {highest}")
    return value
