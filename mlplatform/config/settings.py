"""Typed loading of the platform settings.

Every settings file is validated by pydantic with unknown keys forbidden, so a misspelt key or an
impossible value fails at load time with the file and the dotted key named.
"""

from __future__ import annotations

import datetime as dt
import os
import re
from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

PACKAGE_CONFIG_DIR = Path(__file__).parent
CONTRACTS_DIR = PACKAGE_CONFIG_DIR / "contracts"
SETTINGS_DIR_ENV = "MLPLATFORM_SETTINGS_DIR"


class SettingsError(ValueError):
    """A settings file is missing, unreadable or holds an invalid value."""


class _Strict(BaseModel):
    """Every value comes from the packaged platform.yaml (the one place defaults live), possibly
    overridden; unknown keys are refused."""

    model_config = ConfigDict(extra="forbid", frozen=True)


class PartitionSettings(_Strict):
    start_date: dt.date
    timezone: str


class GeneratorSettings(_Strict):
    seed: int
    rows_per_day: int = Field(gt=0)
    customers: int = Field(gt=0)
    fraud_rate: float = Field(gt=0, lt=1)
    null_rate: float = Field(ge=0, le=1)
    duplicate_rate: float = Field(ge=0, le=1)
    out_of_range_rate: float = Field(ge=0, le=1)
    incident: Literal[
        "none", "volume_drop", "stale", "schema_break", "bad_rows", "null_spike", "label_shift",
        "label_noise", "leak", "drift",
    ]  # fmt: skip


class DataSourceSettings(_Strict):
    kind: Literal["generator", "files"]
    path: str | None
    file_format: Literal["auto", "csv", "parquet"]
    generator: GeneratorSettings

    @model_validator(mode="after")
    def _files_need_a_path(self) -> DataSourceSettings:
        if self.kind == "files" and not self.path:
            raise ValueError("data_source.path is required when data_source.kind is 'files'")
        return self


class StorageSettings(_Strict):
    base_dir: str


class FeatureSettings(_Strict):
    window_days: int = Field(ge=1, le=366)
    validation_fraction: float = Field(gt=0, lt=1)
    test_fraction: float = Field(gt=0, lt=1)

    @model_validator(mode="after")
    def _leave_room_to_train(self) -> FeatureSettings:
        if self.validation_fraction + self.test_fraction >= 0.9:
            raise ValueError(
                "features.validation_fraction + features.test_fraction must stay below 0.9 "
                "so the training split is not starved"
            )
        return self


class TrainingSettings(_Strict):
    max_iter: int = Field(ge=1)
    learning_rate: float = Field(gt=0, le=1)
    max_leaf_nodes: int = Field(ge=2)
    min_samples_leaf: int = Field(ge=1)
    l2_regularization: float = Field(ge=0)
    class_weight: Literal["balanced", "none"]
    early_stopping: bool
    random_state: int
    threshold_metric: Literal["f1", "precision", "recall", "balanced_accuracy"]


class RegistrySettings(_Strict):
    model_name: str | None
    promotion_metric: Literal["roc_auc", "pr_auc", "f1", "accuracy", "recall", "precision"]
    promotion_tolerance: float = Field(ge=0, le=1)


class MlflowSettings(_Strict):
    tracking_uri: str
    registry_uri: str | None
    artifact_location: str
    experiment_name: str


class PlatformSettings(_Strict):
    partitions: PartitionSettings
    contract: str
    data_source: DataSourceSettings
    storage: StorageSettings
    features: FeatureSettings
    training: TrainingSettings
    registry: RegistrySettings
    mlflow: MlflowSettings


# Environment variables that override one dotted settings key (endpoints, paths).
ENV_OVERRIDES: dict[str, tuple[str, ...]] = {
    "MLPLATFORM_DATA_DIR": ("storage", "base_dir"),
    "MLPLATFORM_CONTRACT": ("contract",),
    "MLPLATFORM_SOURCE_PATH": ("data_source", "path"),
    "MLPLATFORM_SOURCE_KIND": ("data_source", "kind"),
    "MLPLATFORM_GENERATOR_INCIDENT": ("data_source", "generator", "incident"),
    "MLFLOW_TRACKING_URI": ("mlflow", "tracking_uri"),
    "MLFLOW_REGISTRY_URI": ("mlflow", "registry_uri"),
    "MLPLATFORM_MLFLOW_ARTIFACTS": ("mlflow", "artifact_location"),
    "MLPLATFORM_MLFLOW_EXPERIMENT": ("mlflow", "experiment_name"),
}


def read_yaml(path: Path) -> dict[str, Any]:
    """Read one YAML mapping, naming the file in any error."""
    try:
        text = path.read_text()
    except OSError as error:
        raise SettingsError(f"{path}: cannot read settings file ({error})") from error
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as error:
        raise SettingsError(f"{path}: not valid YAML ({error})") from error
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


def describe_validation_error(source: str, error: ValidationError) -> str:
    lines = [f"{source}: invalid settings"]
    for item in error.errors():
        key = ".".join(str(part) for part in item["loc"]) or "(top level)"
        message = (
            "unknown key (check its spelling)"
            if item["type"] == "extra_forbidden"
            else (item["msg"])
        )
        lines.append(f"  {key}: {message}")
    return "\n".join(lines)


def _set_dotted(data: dict[str, Any], keys: tuple[str, ...], value: str) -> None:
    node = data
    for key in keys[:-1]:
        node = node.setdefault(key, {})
    node[keys[-1]] = value


def _absolute_local(path_or_uri: str, root: Path) -> str:
    """Anchor a relative local path at `root`; leave URIs (s3://..., mlflow-artifacts:/) alone."""
    if re.match(r"^[A-Za-z][A-Za-z0-9+.-]+:", path_or_uri):
        return path_or_uri
    path = Path(path_or_uri).expanduser()
    return str(path if path.is_absolute() else (root / path).resolve())


def _absolute_sqlite_uri(uri: str, root: Path) -> str:
    prefix = "sqlite:///"
    if uri.startswith(prefix) and not uri.startswith(prefix + "/"):
        return prefix + str((root / uri[len(prefix) :]).resolve())
    return uri


def load_settings(
    settings_dir: str | os.PathLike[str] | None = None,
    environ: dict[str, str] | None = None,
    root: Path | None = None,
) -> PlatformSettings:
    """Load the packaged defaults, overlay a user's settings folder and environment overrides.

    Relative local paths are anchored at `root` (the working directory by default), so every process
    of one deployment (webserver, daemon, run workers) agrees on where data and models live.
    """
    environ = dict(os.environ if environ is None else environ)
    root = Path.cwd() if root is None else root
    defaults_path = PACKAGE_CONFIG_DIR / "platform.yaml"
    data = read_yaml(defaults_path)
    sources = [str(defaults_path)]

    user_dir = settings_dir or environ.get(SETTINGS_DIR_ENV)
    if user_dir:
        user_path = Path(user_dir) / "platform.yaml"
        if not Path(user_dir).is_dir():
            raise SettingsError(f"{SETTINGS_DIR_ENV}={user_dir}: not a folder")
        if user_path.exists():
            data = deep_merge(data, read_yaml(user_path))
            sources.append(str(user_path))

    for variable, keys in ENV_OVERRIDES.items():
        if environ.get(variable):
            _set_dotted(data, keys, environ[variable])
            sources.append(f"${variable}")

    try:
        settings = PlatformSettings.model_validate(data)
    except ValidationError as error:
        raise SettingsError(describe_validation_error(" + ".join(sources), error)) from None

    return settings.model_copy(
        update={
            "storage": settings.storage.model_copy(
                update={"base_dir": _absolute_local(settings.storage.base_dir, root)}
            ),
            "mlflow": settings.mlflow.model_copy(
                update={
                    "tracking_uri": _absolute_sqlite_uri(settings.mlflow.tracking_uri, root),
                    "registry_uri": settings.mlflow.registry_uri
                    and _absolute_sqlite_uri(settings.mlflow.registry_uri, root),
                    "artifact_location": _absolute_local(settings.mlflow.artifact_location, root),
                }
            ),
            "contract": str(resolve_contract_path(settings.contract, root)),
        }
    )


def load_settings_file(
    file_name: str,
    model: type[BaseModel],
    settings_dir: str | os.PathLike[str] | None = None,
    environ: dict[str, str] | None = None,
    overlays: list[Path] | None = None,
    env_overrides: dict[str, tuple[str, ...]] | None = None,
) -> BaseModel:
    """A packaged settings file, then `overlays`, then the same file in the user's settings folder,
    then `env_overrides` (environment variable -> dotted key), validated by `model`; errors name
    the files, the variables and the dotted key."""
    environ = dict(os.environ if environ is None else environ)
    default_path = PACKAGE_CONFIG_DIR / file_name
    data = read_yaml(default_path)
    sources = [str(default_path)]
    for overlay in overlays or []:
        data = deep_merge(data, read_yaml(overlay))
        sources.append(str(overlay))
    user_dir = settings_dir or environ.get(SETTINGS_DIR_ENV)
    if user_dir and (Path(user_dir) / file_name).exists():
        user_path = Path(user_dir) / file_name
        data = deep_merge(data, read_yaml(user_path))
        sources.append(str(user_path))
    for variable, keys in (env_overrides or {}).items():
        if environ.get(variable):
            _set_dotted(data, keys, environ[variable])
            sources.append(f"${variable}")
    try:
        return model.model_validate(data)
    except ValidationError as error:
        raise SettingsError(describe_validation_error(" + ".join(sources), error)) from None


def resolve_contract_path(name_or_path: str, root: Path | None = None) -> Path:
    """A packaged contract name (`card_transactions`) or a path to a contract YAML file."""
    packaged = CONTRACTS_DIR / f"{name_or_path}.yaml"
    if packaged.exists():
        return packaged
    path = Path(name_or_path).expanduser()
    if not path.is_absolute():
        path = (root or Path.cwd()) / path
    if not path.exists():
        known = ", ".join(sorted(p.stem for p in CONTRACTS_DIR.glob("*.yaml")))
        raise SettingsError(
            f"contract: '{name_or_path}' is neither a packaged contract ({known}) "
            "nor an existing file"
        )
    return path.resolve()
