"""Training: the model chosen among the candidates (each family's best, and their soft vote) by
time-ordered folds inside the training split (`selection`), refit on the whole training split,
calibrated on the validation split (`calibration`), its decision threshold chosen on the calibrated
validation scores, then evaluated once on the untouched test split, every test metric with its 95%
interval and the positives it rests on."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from mlplatform.core.calibration import calibrate
from mlplatform.core.evaluate import choose_threshold, classification_metrics
from mlplatform.core.features import LABEL_COLUMN, SPLIT_COLUMN
from mlplatform.core.models import build_model, fit_model, soft_vote, with_decision_threshold
from mlplatform.core.selection import SearchPlan, Selection, Trial, select_model
from mlplatform.core.uncertainty import Interval, metric_intervals
from mlplatform.core.validate import DatasetError


@dataclass
class TrainingResult:
    # The fitted pipeline, calibrated (unless `calibration` is none), inside a classifier that
    # applies `threshold` itself (`predict`).
    model: Any
    # A family's name, or `soft_vote` (its members' params as `<family>.<name>`).
    family: str
    params: dict[str, Any]
    # The model families the model is made of (the soft vote's members, or `family`).
    families: list[str]
    # sigmoid, isotonic or none: how the scores were calibrated on the validation split.
    calibration: str
    threshold: float
    validation_metrics: dict[str, float]
    test_metrics: dict[str, float]
    test_intervals: dict[str, Interval]
    test_scores: np.ndarray
    test_labels: np.ndarray
    # The refit model's test scores before calibration (`test_scores` with `calibration` none).
    uncalibrated_test_scores: np.ndarray
    validation_scores: np.ndarray
    validation_labels: np.ndarray
    selection: Selection
    categorical_columns: list[str]
    numeric_columns: list[str]
    split_sizes: dict[str, int]
    test_positive_rate: float

    @property
    def input_columns(self) -> list[str]:
        return [*self.categorical_columns, *self.numeric_columns]


def split_xy(
    features: pd.DataFrame, split: str, columns: list[str]
) -> tuple[pd.DataFrame, np.ndarray]:
    rows = features[SPLIT_COLUMN] == split
    return features.loc[rows, columns], features.loc[rows, LABEL_COLUMN].to_numpy()


def _require_both_classes(features: pd.DataFrame) -> None:
    for split in ("train", "validation", "test"):
        labels = features.loc[features[SPLIT_COLUMN] == split, LABEL_COLUMN]
        if labels.nunique() < 2:
            raise DatasetError(
                f"the {split} split has {len(labels)} rows and only one class; "
                "widen the feature window or add data"
            )


def fit_candidate(
    candidate: Trial,
    x: pd.DataFrame,
    y: np.ndarray,
    categorical: list[str],
    numeric: list[str],
    seed: int,
) -> Any:
    """`candidate`'s model fitted on `x`, `y`: its family's pipeline, or for the soft vote every
    member's pipeline, averaged."""
    if not candidate.members:
        pipeline = build_model(candidate.family, categorical, numeric, candidate.params, seed)
        return fit_model(pipeline, x, y)
    fitted = [
        (m.family, fit_model(build_model(m.family, categorical, numeric, m.params, seed), x, y))
        for m in candidate.members
    ]
    return soft_vote(fitted, x, y)


def train_model(
    features: pd.DataFrame,
    categorical: list[str],
    numeric: list[str],
    plan: SearchPlan,
    threshold_metric: str,
    bootstrap_resamples: int,
    calibration: str,
    log: Callable[[str], None] = lambda message: None,
) -> TrainingResult:
    """Select, refit, calibrate, threshold and evaluate. `features` is in time order (as
    `build_features` leaves it), so the training split's rows are too. The threshold is chosen on
    the calibrated validation scores: it is a probability the registered model applies."""
    columns = [*categorical, *numeric]
    sizes = features[SPLIT_COLUMN].value_counts().to_dict()
    _require_both_classes(features)
    x_train, y_train = split_xy(features, "train", columns)
    selection = select_model(x_train, y_train, categorical, numeric, plan, log)
    winner = selection.winner
    log(
        f"selected {winner.family} ({plan.metric} {winner.score:.4f} over "
        f"{len(winner.fold_scores)} folds); refitting on {len(y_train)} training rows"
    )
    pipeline = fit_candidate(winner, x_train, y_train, categorical, numeric, plan.seed)
    del x_train, y_train

    x_validation, y_validation = split_xy(features, "validation", columns)
    calibrated = calibrate(pipeline, calibration, x_validation, y_validation)
    validation_scores = calibrated.predict_proba(x_validation)[:, 1]
    threshold = choose_threshold(y_validation, validation_scores, metric=threshold_metric)
    validation_metrics = classification_metrics(y_validation, validation_scores, threshold)
    model = with_decision_threshold(calibrated, threshold, x_validation, y_validation)
    log(
        f"calibration {calibration} and decision threshold {threshold:.4g} ({threshold_metric}) "
        f"on {len(y_validation)} validation rows; scoring "
        f"{int((features[SPLIT_COLUMN] == 'test').sum())} test rows"
    )
    x_test, y_test = split_xy(features, "test", columns)
    test_scores = calibrated.predict_proba(x_test)[:, 1]
    uncalibrated = test_scores if calibrated is pipeline else pipeline.predict_proba(x_test)[:, 1]
    intervals = metric_intervals(
        y_test, test_scores, threshold, seed=plan.seed, resamples=bootstrap_resamples
    )
    return TrainingResult(
        model=model,
        family=winner.family,
        params=dict(winner.params),
        families=winner.families,
        calibration=calibration,
        threshold=threshold,
        validation_metrics=validation_metrics,
        test_metrics=classification_metrics(y_test, test_scores, threshold),
        test_intervals=intervals,
        test_scores=test_scores,
        test_labels=y_test,
        uncalibrated_test_scores=uncalibrated,
        validation_scores=validation_scores,
        validation_labels=y_validation,
        selection=selection,
        categorical_columns=categorical,
        numeric_columns=numeric,
        split_sizes={str(k): int(v) for k, v in sizes.items()},
        test_positive_rate=float(y_test.mean()),
    )
