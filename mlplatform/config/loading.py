"""How every settings file is read: the packaged file, then overlays, then the same file in the
user's settings folder, then environment variables, validated by one strict pydantic model.

A misspelt key, a key named twice or an impossible value fails at load with the files and the
dotted key named."""

from __future__ import annotations

import os
import re
import zoneinfo
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Annotated, Any, TypeVar

import yaml
from pydantic import AfterValidator, BaseModel, ConfigDict, ValidationError

from mlplatform.core.yaml_files import describe_yaml_error, parse_yaml

PACKAGE_CONFIG_DIR = Path(__file__).parent
SETTINGS_DIR_ENV = "MLPLATFORM_SETTINGS_DIR"

Model = TypeVar("Model", bound=BaseModel)


class SettingsError(ValueError):
    """A settings file is missing, unreadable or holds an invalid value."""


class StrictModel(BaseModel):
    """A settings section: every value comes from a settings file (the packaged YAML is the one
    place defaults live), unknown keys are refused, and nothing changes it once loaded.

    No number may be infinite or NaN: YAML reads `.inf` and `.nan` as floats, and every bound
    (`ge=0`, `le=1`) lets infinity or NaN through one side or the other (a retry delay of `.inf`
    became "retry in nan seconds" and a hang)."""

    model_config = ConfigDict(extra="forbid", frozen=True, allow_inf_nan=False)


def _known_time_zone(name: str) -> str:
    try:
        zoneinfo.ZoneInfo(name)
    except (zoneinfo.ZoneInfoNotFoundError, ValueError):
        raise ValueError(
            f"'{name}' is not a time zone of the IANA database (such as UTC or Europe/Paris)"
        ) from None
    return name


# Checked at load: an unknown zone otherwise fails later, far from the file that named it.
TimeZoneName = Annotated[str, AfterValidator(_known_time_zone)]


def read_yaml(path: Path) -> dict[str, Any]:
    """Read one YAML mapping, naming the file in any error."""
    try:
        text = path.read_text()
    except OSError as error:
        raise SettingsError(f"{path}: cannot read settings file ({error})") from error
    try:
        data = parse_yaml(text)
    except yaml.YAMLError as error:
        raise SettingsError(f"{path}: not valid YAML ({describe_yaml_error(error)})") from error
    if data is None:
        return {}
    if not isinstance(data, dict):
        raise SettingsError(
            f"{path}: expected a mapping at the top level, got {type(data).__name__}"
        )
    return data


def deep_merge(base: dict[str, Any], override: dict[str, Any]) -> dict[str, Any]:
    merged = dict(base)
    for key, value in override.items():
        if isinstance(value, dict) and isinstance(merged.get(key), dict):
            merged[key] = deep_merge(merged[key], value)
        else:
            merged[key] = value
    return merged


def describe_validation_error(
    source: str, error: ValidationError, layers: Sequence[tuple[str, Mapping[str, Any]]] = ()
) -> str:
    """One line per invalid key; with `layers` (file name, its data), each key also names the
    files that set it, so among several layered files the one to fix is named."""
    lines = [f"{source}: invalid settings"]
    for item in error.errors():
        key = ".".join(str(part) for part in item["loc"]) or "(top level)"
        message = (
            "unknown key (check its spelling)"
            if item["type"] == "extra_forbidden"
            else (item["msg"])
        )
        setting = [name for name, data in layers if item["loc"] and _holds(data, item["loc"])]
        # A key the packaged defaults share with a user's file is the user's to fix.
        setting = setting[1:] if len(setting) > 1 and layers[0][0] == setting[0] else setting
        lines.append(f"  {key}: {message}" + (f" (set in {', '.join(setting)})" if setting else ""))
    return "\n".join(lines)


def _holds(data: Mapping[str, Any], keys: Sequence[Any]) -> bool:
    node: Any = data
    for key in keys:
        present = (isinstance(node, Mapping) and key in node) or (
            isinstance(node, list) and isinstance(key, int) and 0 <= key < len(node)
        )
        if not present:
            return False
        node = node[key]
    return True


def absolute_local(path_or_uri: str, root: Path) -> str:
    """Anchor a relative local path at `root`; leave URIs (s3://..., mlflow-artifacts:/) alone."""
    if re.match(r"^[A-Za-z][A-Za-z0-9+.-]+:", path_or_uri):
        return path_or_uri
    path = Path(path_or_uri).expanduser()
    return str(path if path.is_absolute() else (root / path).resolve())


def _set_dotted(data: dict[str, Any], keys: tuple[str, ...], value: str) -> None:
    node = data
    for key in keys[:-1]:
        node = node.setdefault(key, {})
    node[keys[-1]] = value


def user_settings_dir(
    settings_dir: str | os.PathLike[str] | None, environ: Mapping[str, str]
) -> Path | None:
    """The user's settings folder (argument, else $MLPLATFORM_SETTINGS_DIR), which must exist."""
    user_dir = settings_dir or environ.get(SETTINGS_DIR_ENV)
    if not user_dir:
        return None
    if not Path(user_dir).is_dir():
        raise SettingsError(f"{SETTINGS_DIR_ENV}={user_dir}: not a folder")
    return Path(user_dir)


# An overlay: a settings file, or a file already read and adjusted (paths anchored) by its owner.
Overlay = Path | tuple[Path, Mapping[str, Any]]


def load_layered(
    file_name: str,
    model: type[Model],
    settings_dir: str | os.PathLike[str] | None = None,
    environ: Mapping[str, str] | None = None,
    overlays: Sequence[Overlay] = (),
    env_overrides: Mapping[str, tuple[str, ...]] | None = None,
) -> Model:
    """The packaged `file_name`, then `overlays`, then `file_name` in the user's settings folder,
    then `env_overrides` (environment variable -> dotted key), validated by `model`."""
    environ = os.environ if environ is None else environ
    default_path = PACKAGE_CONFIG_DIR / file_name
    layers: list[tuple[str, Mapping[str, Any]]] = [(str(default_path), read_yaml(default_path))]
    user_dir = user_settings_dir(settings_dir, environ)
    user_path = user_dir / file_name if user_dir else None
    for overlay in [*overlays, *([user_path] if user_path and user_path.exists() else [])]:
        path, data = overlay if isinstance(overlay, tuple) else (overlay, read_yaml(overlay))
        layers.append((str(path), data))
    data: dict[str, Any] = {}
    for _, layer in layers:
        data = deep_merge(data, dict(layer))
    for variable, keys in (env_overrides or {}).items():
        if environ.get(variable):
            _set_dotted(data, keys, environ[variable])
            layers.append((f"${variable}", _dotted(keys, environ[variable])))
    try:
        return model.model_validate(data)
    except ValidationError as error:
        sources = " + ".join(name for name, _ in layers)
        raise SettingsError(describe_validation_error(sources, error, layers)) from None


def _dotted(keys: tuple[str, ...], value: str) -> dict[str, Any]:
    data: dict[str, Any] = {}
    _set_dotted(data, keys, value)
    return data
