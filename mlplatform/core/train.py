"""Model training: a scikit-learn Pipeline (category encoding + HistGradientBoostingClassifier),
fitted on the training split, with the decision threshold chosen on the validation split."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from mlplatform.core.evaluate import choose_threshold, classification_metrics
from mlplatform.core.features import LABEL_COLUMN, SPLIT_COLUMN
from mlplatform.core.validate import DatasetError


@dataclass(frozen=True)
class Hyperparameters:
    max_iter: int = 300
    learning_rate: float = 0.08
    max_leaf_nodes: int = 31
    min_samples_leaf: int = 40
    l2_regularization: float = 1.0
    class_weight: str = "balanced"
    early_stopping: bool = True
    random_state: int = 7


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
        max_iter=params.max_iter,
        learning_rate=params.learning_rate,
        max_leaf_nodes=params.max_leaf_nodes,
        min_samples_leaf=params.min_samples_leaf,
        l2_regularization=params.l2_regularization,
        class_weight=None if params.class_weight == "none" else params.class_weight,
        early_stopping=params.early_stopping,
        # Early stopping watches a slice of the training split, never the validation split.
        validation_fraction=0.1,
        n_iter_no_change=20,
        categorical_features=[True] * len(categorical) + [False] * len(numeric),
        random_state=params.random_state,
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
    params: Hyperparameters = Hyperparameters(),
    threshold_metric: str = "f1",
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
