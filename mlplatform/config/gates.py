"""Typed loading of the quality gates file: a misspelt key or an impossible value fails at load
with the file and the dotted key named."""

from __future__ import annotations

import functools
import os
from pathlib import Path
from typing import Literal

from pydantic import Field, model_validator

from mlplatform.config.dataset import GATES_FILE
from mlplatform.config.loading import StrictModel, load_layered

Rate = float


class Gate(StrictModel):
    severity: Literal["ERROR", "WARN"]

    @property
    def blocking(self) -> bool:
        return self.severity == "ERROR"


class MinRowsGate(Gate):
    min_rows: int = Field(ge=0)


class FreshnessGate(Gate):
    max_lag_minutes: float = Field(gt=0)


class VolumeGate(Gate):
    lookback_partitions: int = Field(ge=1)
    min_history: int = Field(ge=1)
    min_ratio: float = Field(ge=0)
    max_ratio: float = Field(gt=0)

    @model_validator(mode="after")
    def _ordered(self) -> VolumeGate:
        if self.min_ratio > self.max_ratio:
            raise ValueError(f"min_ratio ({self.min_ratio}) is above max_ratio ({self.max_ratio})")
        if self.min_history > self.lookback_partitions:
            raise ValueError("min_history cannot exceed lookback_partitions")
        return self


class MaxRateGate(Gate):
    max_rate: Rate = Field(ge=0, le=1)


class RateBandGate(Gate):
    min_rate: Rate = Field(ge=0, le=1)
    max_rate: Rate = Field(ge=0, le=1)

    @model_validator(mode="after")
    def _ordered(self) -> RateBandGate:
        if self.min_rate > self.max_rate:
            raise ValueError(f"min_rate ({self.min_rate}) is above max_rate ({self.max_rate})")
        return self


class DriftGate(Gate):
    max_psi: float = Field(gt=0)
    bins: int = Field(ge=2, le=100)


class LeakageGate(Gate):
    """A feature fails when the lower end of its single-feature ROC-AUC's 95% interval reaches
    `max_single_feature_auc`; with fewer than `min_positives` positives in both the training
    split and the day it cannot judge, and says so as a warning."""

    max_single_feature_auc: float = Field(gt=0.5, le=1)
    # None: every row.
    sample_rows: int | None = Field(None, ge=10_000)
    min_positives: int = Field(ge=1)


class FloorGate(Gate):
    """A test metric's floor, judged on its 95% interval: it fails only when the whole interval
    lies below `min`; with fewer than `min_positives` positives in the test split it cannot judge,
    and says so as a warning."""

    min: Rate = Field(ge=0, le=1)
    min_positives: int = Field(ge=1)


class ChampionGate(Gate):
    """Non-inferiority: the challenger passes when, on the same test rows, it is worse than the
    champion by less than `margin` with 95% confidence (the paired interval of the difference lies
    above -margin). Registration moves `champion` only to a challenger that passed."""

    metric: Literal["roc_auc", "pr_auc", "f1", "accuracy", "recall", "precision"]
    margin: Rate = Field(ge=0, le=1)
    min_positives: int = Field(ge=1)


class CalibrationGate(Gate):
    """The test split's scores in `bins` quantile bins: passes when every bin's mean predicted
    probability lies inside its observed rate's 95% interval. A warning only: with fewer than
    `min_positives` test positives it cannot judge, and says so."""

    severity: Literal["WARN"]
    bins: int = Field(ge=2, le=50)
    min_positives: int = Field(ge=1)


class ToleranceGate(Gate):
    tolerance: float = Field(ge=0, le=1)


LiveMetric = Literal["roc_auc", "pr_auc", "precision", "recall"]


class RealizedFloorGate(Gate):
    metric: LiveMetric
    min: Rate = Field(ge=0, le=1)
    min_positives: int = Field(ge=1)


class RealizedVsBacktestGate(Gate):
    metric: LiveMetric
    margin: Rate = Field(ge=0, le=1)
    min_positives: int = Field(ge=1)


class EstimateGate(Gate):
    metric: Literal["roc_auc", "precision", "recall"]
    tolerance: Rate = Field(ge=0, le=1)
    min_positives: int = Field(ge=1)


class ScoreDriftGate(Gate):
    max_psi: float = Field(gt=0)
    bins: int = Field(ge=2, le=100)


class RawTransactionsGates(StrictModel):
    schema_matches_contract: Gate
    not_empty: MinRowsGate
    fresh: FreshnessGate
    volume_in_band: VolumeGate


class ValidatedTransactionsGates(StrictModel):
    quarantine_rate: MaxRateGate
    null_rate: MaxRateGate
    value_ranges: Gate
    unique_ids: Gate
    label_rate: RateBandGate


class FeaturesGates(StrictModel):
    finite_values: Gate
    drift: DriftGate
    no_target_leakage: LeakageGate


class TrainedModelGates(StrictModel):
    accuracy: FloorGate
    roc_auc: FloorGate
    pr_auc: FloorGate
    recall: FloorGate
    not_worse_than_champion: ChampionGate
    calibrated: CalibrationGate


class RegisteredModelVersionGates(StrictModel):
    reproduces_test_metrics: ToleranceGate
    signature_matches_features: Gate


class ModelPerformanceGates(StrictModel):
    realized_above_floor: RealizedFloorGate
    realized_vs_backtest: RealizedVsBacktestGate
    estimate_matches_realized: EstimateGate
    not_worse_than_predecessor: Gate
    score_distribution: ScoreDriftGate


class QualityGates(StrictModel):
    raw_transactions: RawTransactionsGates
    validated_transactions: ValidatedTransactionsGates
    features: FeaturesGates
    trained_model: TrainedModelGates
    registered_model_version: RegisteredModelVersionGates
    model_performance: ModelPerformanceGates


def load_quality_gates(
    settings_dir: str | os.PathLike[str] | None = None,
    environ: dict[str, str] | None = None,
    dataset: str | os.PathLike[str] | None = None,
) -> QualityGates:
    """Packaged gates, then the dataset folder's own quality_gates.yaml (a dataset with 28%
    positives needs other label-rate bounds than fraud), then the user's settings folder."""
    overlays = []
    if dataset is not None:
        dataset_gates = Path(dataset) / GATES_FILE
        if dataset_gates.exists():
            overlays.append(dataset_gates)
    return load_layered(GATES_FILE, QualityGates, settings_dir, environ, overlays=overlays)


def gates_for(dataset: str | os.PathLike[str]) -> QualityGates:
    """The gates of a dataset folder (its quality_gates.yaml over the packaged one, under the
    process's settings folder), loaded once per folder. The definitions read theirs from
    `mlplatform.config.active.GATES`."""
    return _gates_for(Path(dataset).resolve())


@functools.cache
def _gates_for(dataset: Path) -> QualityGates:
    return load_quality_gates(dataset=dataset)
