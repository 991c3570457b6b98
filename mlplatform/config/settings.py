"""The platform settings (platform.yaml): one typed field per setting, with its bounds and allowed
values; the defaults live in the YAML only. The Launchpad's run config is derived from these
models (`mlplatform.config.launchpad`), so a constraint is never written twice.
"""

from __future__ import annotations

import datetime as dt
import os
import re
from pathlib import Path
from typing import Literal

from pydantic import Field, model_validator

from mlplatform.config.loading import (
    PACKAGE_CONFIG_DIR,
    SETTINGS_DIR_ENV,
    SettingsError,
    StrictModel,
    load_layered,
)

CONTRACTS_DIR = PACKAGE_CONFIG_DIR / "contracts"

__all__ = [
    "CONTRACTS_DIR",
    "SETTINGS_DIR_ENV",
    "PlatformSettings",
    "SettingsError",
    "load_settings",
]

ClassificationMetric = Literal["roc_auc", "pr_auc", "f1", "accuracy", "recall", "precision"]
SourceKind = Literal["generator", "files"]
FileFormat = Literal["auto", "csv", "parquet"]


class PartitionSettings(StrictModel):
    start_date: dt.date
    timezone: str


class GeneratorSettings(StrictModel):
    """The synthetic generator's dials."""

    seed: int = Field(description="Same seed and date give the same rows.")
    rows_per_day: int = Field(gt=0)
    customers: int = Field(gt=0, description="Size of the customer population.")
    fraud_rate: float = Field(gt=0, lt=1)
    null_rate: float = Field(ge=0, le=1, description="Missing values injected.")
    duplicate_rate: float = Field(ge=0, le=1, description="Rows replayed.")
    out_of_range_rate: float = Field(ge=0, le=1, description="Share of impossible values.")
    incident: Literal[
        "none", "volume_drop", "stale", "schema_break", "bad_rows", "null_spike", "label_shift",
        "label_noise", "leak", "drift",
    ] = Field(description="Inject an incident to see the quality gates stop a run.")  # fmt: skip


class DataSourceSettings(StrictModel):
    kind: SourceKind = Field(
        description="generator: seeded synthetic card transactions; files: CSV/Parquet at `path`."
    )
    path: str | None = Field(
        description="files: a file, folder or glob; local or an fsspec URL (s3://...)."
    )
    file_format: FileFormat
    generator: GeneratorSettings

    @model_validator(mode="after")
    def _files_need_a_path(self) -> DataSourceSettings:
        if self.kind == "files" and not self.path:
            raise ValueError("data_source.path is required when data_source.kind is 'files'")
        return self


class StorageSettings(StrictModel):
    base_dir: str


class FeatureSettings(StrictModel):
    window_days: int = Field(ge=1, le=366)
    validation_fraction: float = Field(gt=0, lt=1, description="Share of the window, by time.")
    test_fraction: float = Field(gt=0, lt=1, description="Share of the window, the newest rows.")

    @model_validator(mode="after")
    def _leave_room_to_train(self) -> FeatureSettings:
        if self.validation_fraction + self.test_fraction >= 0.9:
            raise ValueError(
                "features.validation_fraction + features.test_fraction must stay below 0.9 "
                "so the training split is not starved"
            )
        return self


class TrainingSettings(StrictModel):
    """Hyperparameters of the HistGradientBoostingClassifier (each field is one of its keyword
    arguments, passed as it is) and the threshold rule."""

    max_iter: int = Field(ge=1)
    learning_rate: float = Field(gt=0, le=1)
    max_leaf_nodes: int = Field(ge=2)
    min_samples_leaf: int = Field(ge=1)
    l2_regularization: float = Field(ge=0)
    class_weight: Literal["balanced", "none"] = Field(
        description="none: every row weighs the same."
    )
    early_stopping: bool
    n_iter_no_change: int = Field(ge=1, description="Early stopping's patience, in iterations.")
    random_state: int
    threshold_metric: Literal["f1", "precision", "recall", "balanced_accuracy"] = Field(
        description="The decision threshold maximises this metric on the validation split."
    )


class PromotionSettings(StrictModel):
    """When a newly registered version takes the `champion` alias."""

    metric: ClassificationMetric = Field(description="Compared on the same (new) test split.")
    tolerance: float = Field(ge=0, le=1, description="How far below the champion still counts.")


class MlflowSettings(StrictModel):
    tracking_uri: str
    registry_uri: str | None
    artifact_location: str
    experiment_name: str
    # None: `<contract name>_classifier`.
    registered_model_name: str | None


class PlatformSettings(StrictModel):
    partitions: PartitionSettings
    contract: str
    data_source: DataSourceSettings
    storage: StorageSettings
    features: FeatureSettings
    training: TrainingSettings
    promotion: PromotionSettings
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
    root = Path.cwd() if root is None else root
    settings = load_layered(
        "platform.yaml", PlatformSettings, settings_dir, environ, env_overrides=ENV_OVERRIDES
    )
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
