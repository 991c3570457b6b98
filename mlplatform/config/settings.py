"""The platform settings (platform.yaml): one typed field per setting, with its bounds and allowed
values; the defaults live in the YAML only. The Launchpad's run config is derived from these
models (`mlplatform.config.launchpad`), so a constraint is never written twice.
"""

from __future__ import annotations

import datetime as dt
import os
from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Literal

from pydantic import AfterValidator, BeforeValidator, Field, model_validator

from mlplatform.config.dataset import (
    CONTRACT_FILE,
    DATASET_ENV,
    dataset_settings,
    open_dataset,
)
from mlplatform.config.loading import (
    PACKAGE_CONFIG_DIR,
    SETTINGS_DIR_ENV,
    SettingsError,
    StrictModel,
    TimeZoneName,
    absolute_local,
    load_layered,
    read_yaml,
    user_settings_dir,
)

if TYPE_CHECKING:
    from mlplatform.core.selection import SearchPlan

__all__ = [
    "DATASET_ENV",
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
    timezone: TimeZoneName


def _day_as_text(value: object) -> object:
    # YAML reads an unquoted 2026-03-08 as a date; run config only holds text.
    return value.isoformat() if isinstance(value, dt.date) else value


def _iso_day(value: str) -> str:
    try:
        dt.date.fromisoformat(value)
    except ValueError:
        raise ValueError(f"not a day (YYYY-MM-DD): {value!r}") from None
    return value


# A calendar day kept as ISO text (YYYY-MM-DD): Dagster's run config (the Launchpad) has no
# date type.
IsoDay = Annotated[str, BeforeValidator(_day_as_text), AfterValidator(_iso_day)]


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
    events_carry_labels: bool = Field(
        description="false: events come without is_fraud; their outcomes arrive days later."
    )
    concept_drift_from: IsoDay | None = Field(
        description="From this day (YYYY-MM-DD) fraud follows another link to the same inputs."
    )
    outcome_delay_min_days: int = Field(ge=0, le=366, description="An outcome's fewest days late.")
    outcome_delay_max_days: int = Field(ge=0, le=366, description="An outcome's most days late.")
    outcome_delay_shape: Literal["uniform", "geometric"] = Field(
        description="uniform: every delay equally likely; geometric: shorter delays more likely."
    )
    outcome_delay_mean_days: float | None = Field(
        gt=0, description="geometric: the mean delay (before the cut at the maximum)."
    )

    @model_validator(mode="after")
    def _outcome_delay_consistent(self) -> GeneratorSettings:
        low, high = self.outcome_delay_min_days, self.outcome_delay_max_days
        mean = self.outcome_delay_mean_days
        if low > high:
            raise ValueError(
                f"outcome_delay_min_days ({low}) is above outcome_delay_max_days ({high})"
            )
        if self.outcome_delay_shape == "geometric" and (mean is None or not low < mean <= high):
            raise ValueError(
                f"outcome_delay_shape geometric needs outcome_delay_mean_days above "
                f"outcome_delay_min_days ({low}) and at most outcome_delay_max_days ({high}), "
                f"got {mean}"
            )
        if self.outcome_delay_shape == "uniform" and mean is not None:
            raise ValueError(
                "outcome_delay_mean_days applies to outcome_delay_shape geometric only "
                "(set it to null)"
            )
        return self


class DataSourceSettings(StrictModel):
    kind: SourceKind = Field(
        description="generator: seeded synthetic card transactions; files: CSV/Parquet at `path`."
    )
    path: str | None = Field(
        description="files: a file, folder or glob; local or an fsspec URL (s3://...)."
    )
    file_format: FileFormat
    csv_max_field_chars: int = Field(
        ge=1,
        le=2**31 - 1,
        description="The longest CSV field read, in characters (events and outcomes); a longer "
        "one is refused naming its size and line.",
    )
    generator: GeneratorSettings

    @model_validator(mode="after")
    def _files_need_a_path(self) -> DataSourceSettings:
        if self.kind == "files" and not self.path:
            raise ValueError("data_source.path is required when data_source.kind is 'files'")
        return self


class OutcomeSourceSettings(StrictModel):
    """Where the outcomes a dataset's contract declares come from (files; the generator's own
    when the data source is the generator)."""

    path: str | None = Field(
        description="files: a file, folder or glob of outcome records; local or an fsspec URL."
    )
    file_format: FileFormat


class MonitoringSettings(StrictModel):
    """Post-deployment: live comparisons on outcomes, and what a clear verdict does."""

    live_metric: ClassificationMetric = Field(
        description="The metric of the paired live comparisons."
    )
    live_promotion_margin: float = Field(
        ge=0,
        le=1,
        description="A challenger is promoted on live evidence when better by more than this "
        "with 95% confidence.",
    )
    live_min_positives: int = Field(ge=1)
    on_worse_than_predecessor: Literal["alert", "rollback"]
    resamples: int = Field(ge=50, le=10_000)


class StorageSettings(StrictModel):
    base_dir: str


class FeatureSettings(StrictModel):
    window_days: int = Field(ge=1, le=366)
    validation_fraction: float = Field(gt=0, lt=1, description="Share of the window, by time.")
    test_fraction: float = Field(gt=0, lt=1, description="Share of the window, the newest rows.")
    pending_days_poll_seconds: float = Field(
        gt=0, le=3600, description="How often a day of the window still to come is looked for."
    )
    pending_days_wait_seconds: float = Field(
        ge=0, le=86400, description="How long features wait for the days still to come."
    )

    @model_validator(mode="after")
    def _leave_room_to_train(self) -> FeatureSettings:
        if self.validation_fraction + self.test_fraction >= 0.9:
            raise ValueError(
                "features.validation_fraction + features.test_fraction must stay below 0.9 "
                "so the training split is not starved"
            )
        return self


class SearchRange(StrictModel):
    """A searched hyperparameter's range; integers when the hyperparameter is an integer."""

    low: float
    high: float
    log: bool = Field(description="Searched on a log scale (rates, regularization strengths).")

    @model_validator(mode="after")
    def _ordered(self) -> SearchRange:
        if not self.low < self.high:
            raise ValueError(f"low ({self.low}) must be below high ({self.high})")
        if self.log and self.low <= 0:
            raise ValueError("a log-scale range needs low > 0")
        return self


ClassWeight = Literal["balanced", "none"]


class LogisticRegressionParams(StrictModel):
    """Keyword arguments of scikit-learn's LogisticRegression (L2)."""

    C: float = Field(gt=0, description="Inverse regularization strength.")
    class_weight: ClassWeight
    max_iter: int = Field(ge=10)


class HistGradientBoostingParams(StrictModel):
    """Keyword arguments of scikit-learn's HistGradientBoostingClassifier."""

    max_iter: int = Field(ge=1)
    learning_rate: float = Field(gt=0, le=1)
    max_leaf_nodes: int = Field(ge=2)
    min_samples_leaf: int = Field(ge=1)
    l2_regularization: float = Field(ge=0)
    class_weight: ClassWeight
    early_stopping: bool
    n_iter_no_change: int = Field(ge=1, description="Early stopping's patience, in iterations.")


class LightGBMParams(StrictModel):
    """Keyword arguments of LightGBM's LGBMClassifier."""

    n_estimators: int = Field(ge=1)
    learning_rate: float = Field(gt=0, le=1)
    num_leaves: int = Field(ge=2)
    min_child_samples: int = Field(ge=1)
    reg_lambda: float = Field(ge=0)
    colsample_bytree: float = Field(gt=0, le=1)
    class_weight: ClassWeight


class _Family(StrictModel):
    """A model family: its hyperparameters as fixed (the first candidate) and those searched."""

    search: dict[str, SearchRange]

    @model_validator(mode="after")
    def _searchable(self) -> _Family:
        params = self.fixed  # type: ignore[attr-defined]
        fields = type(params).model_fields
        for name, span in self.search.items():
            if name not in fields:
                raise ValueError(f"search.{name}: not a hyperparameter of this family")
            for end in (span.low, span.high):
                value = int(end) if fields[name].annotation is int else end
                # The range's ends must be values the hyperparameter accepts.
                type(params).model_validate({**params.model_dump(), name: value})
            fixed = getattr(params, name)
            if not span.low <= fixed <= span.high:
                raise ValueError(
                    f"search.{name}: the fixed value {fixed} (the first candidate) lies outside "
                    f"[{span.low}, {span.high}]"
                )
        return self


class LogisticRegressionFamily(_Family):
    fixed: LogisticRegressionParams


class HistGradientBoostingFamily(_Family):
    fixed: HistGradientBoostingParams


class LightGBMFamily(_Family):
    fixed: LightGBMParams


Family = Literal["logistic_regression", "hist_gradient_boosting", "lightgbm"]


class TrainingSettings(StrictModel):
    """Which model families are tried, how the winner is chosen, and the threshold rule."""

    families: list[Family] = Field(min_length=1, description="Candidate model families.")
    selection_metric: Literal["roc_auc", "pr_auc"] = Field(
        description="Mean over the time-ordered folds; the best candidate is refit."
    )
    folds: int = Field(ge=1, le=10, description="Expanding-window folds in the training split.")
    trials_per_family: int = Field(ge=1, le=500)
    time_budget_seconds: float = Field(gt=0, description="For the whole search.")
    max_search_negatives: int = Field(
        ge=100,
        description="The search sample keeps every positive and at most this many negatives.",
    )
    soft_vote_max_training_rows: int = Field(
        ge=0,
        description=(
            "The families' soft vote is a candidate when the training split has at most this "
            "many rows (its refit fits every family); 0: never."
        ),
    )
    calibration: Literal["sigmoid", "isotonic", "none"] = Field(
        description=(
            "How the chosen model's scores are calibrated on the validation split, before the "
            "threshold is chosen: sigmoid keeps the ranking; isotonic can tie scores."
        )
    )
    threshold_metric: Literal["f1", "precision", "recall", "balanced_accuracy"] = Field(
        description="The decision threshold maximises this metric on the validation split."
    )
    # scikit-learn accepts seeds in [0, 2**32 - 1] only, and would say so at training time.
    random_state: int = Field(ge=0, le=2**32 - 1)
    bootstrap_resamples: int = Field(
        ge=50, le=10_000, description="Resamples behind each test metric's 95% interval."
    )
    logistic_regression: LogisticRegressionFamily
    hist_gradient_boosting: HistGradientBoostingFamily
    lightgbm: LightGBMFamily

    @model_validator(mode="after")
    def _distinct_families(self) -> TrainingSettings:
        if len(set(self.families)) != len(self.families):
            raise ValueError(f"families: listed twice in {self.families}")
        return self

    def search_plan(self) -> SearchPlan:
        """The search as the core runs it."""
        from mlplatform.core.selection import Dimension, FamilySpace, SearchPlan

        def space(family: _Family) -> FamilySpace:
            fields = type(family.fixed).model_fields  # type: ignore[attr-defined]
            return FamilySpace(
                fixed=family.fixed.model_dump(),  # type: ignore[attr-defined]
                search={
                    name: Dimension(
                        low=span.low,
                        high=span.high,
                        log=span.log,
                        integer=fields[name].annotation is int,
                    )
                    for name, span in family.search.items()
                },
            )

        return SearchPlan(
            families={name: space(getattr(self, name)) for name in self.families},
            metric=self.selection_metric,
            folds=self.folds,
            trials_per_family=self.trials_per_family,
            time_budget_seconds=self.time_budget_seconds,
            max_negatives=self.max_search_negatives,
            seed=self.random_state,
            soft_vote_max_training_rows=self.soft_vote_max_training_rows,
        )


class MlflowSettings(StrictModel):
    tracking_uri: str
    registry_uri: str | None
    artifact_location: str
    experiment_name: str
    # None: `<contract name>_classifier`.
    registered_model_name: str | None
    # None: the tracking URI when a browser can open it (http/https).
    ui_url: str | None


class PlatformSettings(StrictModel):
    partitions: PartitionSettings
    # A packaged dataset's name or a dataset folder; once loaded, the folder's absolute path.
    dataset: str
    data_source: DataSourceSettings
    outcomes: OutcomeSourceSettings
    monitoring: MonitoringSettings
    storage: StorageSettings
    features: FeatureSettings
    training: TrainingSettings
    mlflow: MlflowSettings

    @property
    def contract(self) -> str:
        """The dataset contract file (the dataset folder's contract.yaml)."""
        return str(Path(self.dataset) / CONTRACT_FILE)


# Environment variables that override one dotted settings key (endpoints, paths).
ENV_OVERRIDES: dict[str, tuple[str, ...]] = {
    "MLPLATFORM_DATA_DIR": ("storage", "base_dir"),
    DATASET_ENV: ("dataset",),
    "MLPLATFORM_SOURCE_PATH": ("data_source", "path"),
    "MLPLATFORM_SOURCE_KIND": ("data_source", "kind"),
    "MLPLATFORM_OUTCOMES_PATH": ("outcomes", "path"),
    "MLPLATFORM_GENERATOR_INCIDENT": ("data_source", "generator", "incident"),
    "MLFLOW_TRACKING_URI": ("mlflow", "tracking_uri"),
    "MLFLOW_REGISTRY_URI": ("mlflow", "registry_uri"),
    "MLPLATFORM_MLFLOW_ARTIFACTS": ("mlflow", "artifact_location"),
    "MLPLATFORM_MLFLOW_EXPERIMENT": ("mlflow", "experiment_name"),
    "MLPLATFORM_MLFLOW_UI_URL": ("mlflow", "ui_url"),
}


def _absolute_sqlite_uri(uri: str, root: Path) -> str:
    prefix = "sqlite:///"
    if uri.startswith(prefix) and not uri.startswith(prefix + "/"):
        return prefix + str((root / uri[len(prefix) :]).resolve())
    return uri


def load_settings(
    settings_dir: str | os.PathLike[str] | None = None,
    environ: Mapping[str, str] | None = None,
    root: Path | None = None,
) -> PlatformSettings:
    """The packaged defaults, then the dataset's own settings.yaml, then a user's settings folder,
    then environment overrides.

    Relative local paths are anchored at `root` (the working directory by default), so every process
    of one deployment (webserver, daemon, run workers) agrees on where data and models live; a
    relative `data_source.path` in the dataset's settings.yaml at the dataset folder.
    """
    root = Path.cwd() if root is None else root
    environ = os.environ if environ is None else environ
    dataset = open_dataset(selected_dataset(settings_dir, environ), root)
    overlays = [(dataset.settings, dataset_settings(dataset))] if dataset.settings else []
    settings = load_layered(
        "platform.yaml",
        PlatformSettings,
        settings_dir,
        environ,
        overlays=overlays,
        env_overrides=ENV_OVERRIDES,
    )
    return settings.model_copy(
        update={
            "storage": settings.storage.model_copy(
                update={"base_dir": absolute_local(settings.storage.base_dir, root)}
            ),
            "mlflow": settings.mlflow.model_copy(
                update={
                    "tracking_uri": _absolute_sqlite_uri(settings.mlflow.tracking_uri, root),
                    "registry_uri": settings.mlflow.registry_uri
                    and _absolute_sqlite_uri(settings.mlflow.registry_uri, root),
                    "artifact_location": absolute_local(settings.mlflow.artifact_location, root),
                }
            ),
            "dataset": str(dataset.folder),
        }
    )


def selected_dataset(
    settings_dir: str | os.PathLike[str] | None, environ: Mapping[str, str]
) -> str:
    """The `dataset:` in effect, read before the rest: the dataset's own settings.yaml is a layer
    of the settings, so which dataset it is must be known first (env > user's folder > packaged)."""
    if environ.get(DATASET_ENV):
        return environ[DATASET_ENV]
    for folder in (user_settings_dir(settings_dir, environ), PACKAGE_CONFIG_DIR):
        path = folder / "platform.yaml" if folder else None
        if path and path.exists():
            value = read_yaml(path).get("dataset")
            if value is not None:
                if not isinstance(value, str) or not value:
                    raise SettingsError(f"{path}: dataset: expected a dataset name or folder")
                return value
    raise SettingsError(f"{PACKAGE_CONFIG_DIR / 'platform.yaml'}: dataset: missing")
