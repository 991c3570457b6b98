"""Model training: a scikit-learn Pipeline (category encoding + HistGradientBoostingClassifier),
fitted on the training split, with the decision threshold chosen on the validation split."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from mlplatform.core.evaluate import choose_threshold, classification_metrics
from mlplatform.core.features import LABEL_COLUMN, SPLIT_COLUMN
from mlplatform.core.validate import DatasetError

# Keyword arguments of the HistGradientBoostingClassifier, as the settings give them (their types,
# bounds and defaults live there): a new hyperparameter needs no change here. Run config has no
# null choice, so the value "none" stands for scikit-learn's None.
Hyperparameters = Mapping[str, Any]


def estimator_arguments(params: Hyperparameters) -> dict[str, Any]:
    return {name: None if value == "none" else value for name, value in params.items()}


@dataclass
class TrainingResult:
    pipeline: Any
    threshold: float
    validation_metrics: dict[str, float]
    test_metrics: dict[str, float]
    categorical_columns: list[str]
    numeric_columns: list[str]
    split_sizes: dict[str, int]
    test_positive_rate: float

    @property
    def input_columns(self) -> list[str]:
        return [*self.categorical_columns, *self.numeric_columns]


def build_pipeline(categorical: list[str], numeric: list[str], params: Hyperparameters):
    from sklearn.compose import ColumnTransformer
    from sklearn.ensemble import HistGradientBoostingClassifier
    from sklearn.pipeline import Pipeline
    from sklearn.preprocessing import OrdinalEncoder

    encoder = ColumnTransformer(
        [
            (
                "categories",
                OrdinalEncoder(
                    handle_unknown="use_encoded_value",
                    unknown_value=np.nan,
                    encoded_missing_value=np.nan,
                    dtype=np.float64,
                ),
                categorical,
            ),
            ("numbers", "passthrough", numeric),
        ],
        verbose_feature_names_out=False,
    )
    classifier = HistGradientBoostingClassifier(
        **estimator_arguments(params),
        # Early stopping watches a slice of the training split, never the validation split.
        validation_fraction=0.1,
        categorical_features=[True] * len(categorical) + [False] * len(numeric),
    )
    return Pipeline([("encode", encoder), ("classify", classifier)])


def split_xy(
    features: pd.DataFrame, split: str, columns: list[str]
) -> tuple[pd.DataFrame, np.ndarray]:
    rows = features[SPLIT_COLUMN] == split
    return features.loc[rows, columns], features.loc[rows, LABEL_COLUMN].to_numpy()


def train_model(
    features: pd.DataFrame,
    categorical: list[str],
    numeric: list[str],
    params: Hyperparameters,
    threshold_metric: str,
) -> TrainingResult:
    columns = [*categorical, *numeric]
    sizes = features[SPLIT_COLUMN].value_counts().to_dict()
    x_train, y_train = split_xy(features, "train", columns)
    for split in ("train", "validation", "test"):
        labels = features.loc[features[SPLIT_COLUMN] == split, LABEL_COLUMN]
        if labels.nunique() < 2:
            raise DatasetError(
                f"the {split} split has {len(labels)} rows and only one class; "
                "widen the feature window or add data"
            )
    pipeline = build_pipeline(categorical, numeric, params)
    encoder, classifier = (step for _, step in pipeline.steps)
    # Fitted step by step so that the training columns are let go once encoded: Pipeline.fit
    # would hold them beside their float copy for the whole fit.
    encoded = encoder.fit_transform(x_train)
    del x_train
    classifier.fit(encoded, y_train)
    del encoded, y_train

    x_validation, y_validation = split_xy(features, "validation", columns)
    validation_scores = pipeline.predict_proba(x_validation)[:, 1]
    threshold = choose_threshold(y_validation, validation_scores, metric=threshold_metric)
    validation_metrics = classification_metrics(y_validation, validation_scores, threshold)
    x_test, y_test = split_xy(features, "test", columns)
    test_metrics = classification_metrics(y_test, pipeline.predict_proba(x_test)[:, 1], threshold)
    return TrainingResult(
        pipeline=pipeline,
        threshold=threshold,
        validation_metrics=validation_metrics,
        test_metrics=test_metrics,
        categorical_columns=categorical,
        numeric_columns=numeric,
        split_sizes={str(k): int(v) for k, v in sizes.items()},
        test_positive_rate=float(y_test.mean()),
    )
