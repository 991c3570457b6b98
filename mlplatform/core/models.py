"""The model families a dataset's training settings choose from, each one scikit-learn pipeline
(encoding + classifier), so every family is fitted, logged and loaded the same way.

- `logistic_regression`: median-imputed, standardized numbers with a missing-value flag; one-hot
  categories whose rare levels are grouped; L2-regularized LogisticRegression.
- `hist_gradient_boosting`: scikit-learn's HistGradientBoostingClassifier with native categories.
- `lightgbm`: LightGBM's LGBMClassifier on the same encoding (categories as LightGBM categoricals).

and one candidate made of them, `soft_vote`: scikit-learn's VotingClassifier averaging the
probabilities of every family's fitted pipeline (see `selection` for when it is a candidate).

Hyperparameters arrive as the settings give them (their types, bounds and defaults live there), as
keyword arguments of the family's classifier: a new one needs no change here.

A logged model is loaded back only in the skops format and trusting only the types these families
are made of, in the form skops writes them (`SKOPS_TRUSTED_FORMS`, `model_loading`).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np

# Simplest first: among candidates whose scores are within noise, selection takes the earliest.
FAMILIES = ("logistic_regression", "hist_gradient_boosting", "lightgbm")
# The candidate that averages the families' probabilities: a name beside the families', not one of
# them (it has no hyperparameters of its own, only its members').
SOFT_VOTE = "soft_vote"

# Run config has no null choice: the value "none" stands for scikit-learn's None.
NONE = "none"

# What the families' fitted pipelines are made of beyond skops' own trusted types (each checked by
# fitting every family and asking `skops.io.get_untrusted_types`), with the one node form skops
# writes each in: a registered model is loaded trusting these and nothing else (never the list
# stored beside the model), and a type in another form is refused (`model_loading`), because the
# form decides what runs at load. `ObjectNode` restores a fitted object's attributes without calling
# its constructor; `ConstructorFromReduceNode`, `LossNode` and `NdArrayNode` call the type with
# arguments from the file (how `Booster(None, None, "<a host path>")` read a host file), and
# `TypeNode` hands out the type itself, for a FunctionTransformer to call with `kw_args` from the
# file.
SKOPS_TRUSTED_FORMS = {
    # LightGBM's `defaultdict(OrderedDict)` of best scores: the type as a default factory.
    "collections.OrderedDict": "TypeNode",
    # HistGradientBoosting's own numeric preprocessor, `partial(check_array, ...)`, and no other:
    # `model_loading` refuses any other partial, and check_array anywhere else.
    "functools.partial": "PartialNode",
    # From its model string (`__setstate__`), never `Booster.__init__` with a `model_file`.
    "lightgbm.basic.Booster": "ObjectNode",
    "lightgbm.sklearn.LGBMClassifier": "ObjectNode",
    "numpy.dtype": "DTypeNode",
    # The calibrated model (`calibration.calibrate`): CalibratedClassifierCV's one fitted
    # (frozen model, calibrator) pair, and the sigmoid's calibrator (isotonic's is public).
    "sklearn.calibration._CalibratedClassifier": "ObjectNode",
    "sklearn.calibration._SigmoidCalibration": "ObjectNode",
    "sklearn.ensemble._hist_gradient_boosting.predictor.TreePredictor": "ObjectNode",
    # The soft vote's `named_estimators_`: a dict with attribute access.
    "sklearn.utils._bunch.Bunch": "DictNode",
    "sklearn.utils.validation.check_array": "FunctionNode",
}
SKOPS_TRUSTED_TYPES = tuple(SKOPS_TRUSTED_FORMS)

# A level seen on fewer training rows than this is grouped with the other rare levels before
# one-hot encoding (a column per level seen twice would fit noise).
RARE_LEVEL_ROWS = 20


def estimator_arguments(params: Mapping[str, Any]) -> dict[str, Any]:
    return {name: None if value == NONE else value for name, value in params.items()}


def _ordinal_categories(categorical: list[str], numeric: list[str]):
    """Categories as integer codes (unknown and missing: NaN), numbers passed through."""
    from sklearn.compose import ColumnTransformer
    from sklearn.preprocessing import OrdinalEncoder

    return ColumnTransformer(
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


def _one_hot_and_scaled(categorical: list[str], numeric: list[str]):
    from sklearn.compose import ColumnTransformer
    from sklearn.impute import SimpleImputer
    from sklearn.pipeline import Pipeline
    from sklearn.preprocessing import OneHotEncoder, StandardScaler

    return ColumnTransformer(
        [
            (
                "categories",
                OneHotEncoder(
                    handle_unknown="infrequent_if_exist",
                    min_frequency=RARE_LEVEL_ROWS,
                    sparse_output=False,
                    dtype=np.float64,
                ),
                categorical,
            ),
            (
                "numbers",
                Pipeline(
                    [
                        ("impute", SimpleImputer(strategy="median", add_indicator=True)),
                        ("scale", StandardScaler()),
                    ]
                ),
                numeric,
            ),
        ],
        verbose_feature_names_out=False,
    )


def build_model(
    family: str,
    categorical: list[str],
    numeric: list[str],
    params: Mapping[str, Any],
    seed: int,
):
    """An unfitted pipeline (`encode`, then `classify`) of `family` with `params`."""
    from sklearn.pipeline import Pipeline

    arguments = estimator_arguments(params)
    if family == "logistic_regression":
        from sklearn.linear_model import LogisticRegression

        encoder = _one_hot_and_scaled(categorical, numeric)
        classifier = LogisticRegression(**arguments, random_state=seed)
    elif family == "hist_gradient_boosting":
        from sklearn.ensemble import HistGradientBoostingClassifier

        encoder = _ordinal_categories(categorical, numeric)
        classifier = HistGradientBoostingClassifier(
            **arguments,
            # Early stopping watches a slice of the rows it is fitted on, never validation rows.
            validation_fraction=0.1,
            categorical_features=[True] * len(categorical) + [False] * len(numeric),
            random_state=seed,
        )
    elif family == "lightgbm":
        from lightgbm import LGBMClassifier

        encoder = _ordinal_categories(categorical, numeric)
        classifier = LGBMClassifier(
            **arguments,
            random_state=seed,
            # One thread: a step shares two cores with others, and results stay reproducible.
            n_jobs=1,
            verbose=-1,
        )
    else:
        raise ValueError(f"unknown model family '{family}' (known: {', '.join(FAMILIES)})")
    return Pipeline([("encode", encoder), ("classify", classifier)])


def fit_model(pipeline, x, y, sample_weight: np.ndarray | None = None):
    """Fit encoder then classifier, letting go of the raw columns once encoded (Pipeline.fit
    would hold them beside their float copy for the whole fit)."""
    encoder, classifier = (step for _, step in pipeline.steps)
    encoded = encoder.fit_transform(x)
    del x
    arguments: dict[str, Any] = {"sample_weight": sample_weight}
    if type(classifier).__name__ == "LGBMClassifier":
        # LightGBM takes its categorical columns at fit time: the encoder's first block.
        arguments["categorical_feature"] = list(range(len(encoder.transformers[0][2])))
    classifier.fit(encoded, y, **arguments)
    return pipeline


def soft_vote(fitted: list[tuple[str, Any]], x: Any, y: np.ndarray) -> Any:
    """The `fitted` (name, pipeline) pairs as one classifier whose probability is the plain mean of
    theirs (no weights to fit, so nothing more to overfit). `FrozenEstimator` keeps each member's
    fit: `x`/`y` only set the classes."""
    from sklearn.ensemble import VotingClassifier
    from sklearn.frozen import FrozenEstimator

    vote = VotingClassifier(
        [(name, FrozenEstimator(model)) for name, model in fitted], voting="soft"
    )
    return vote.fit(x, y)


def with_decision_threshold(model: Any, threshold: float, x: Any, y: np.ndarray) -> Any:
    """The fitted `model` wrapped so that `predict` applies `threshold` to the positive class's
    probability (`>=`, as batch scoring does) and `predict_proba` still gives the score: the
    registered model carries its own decision, so `mlflow models serve`, a pyfunc user and the
    platform's scores agree. `FrozenEstimator` keeps the fit: `x`/`y` only set the classes."""
    from sklearn.frozen import FrozenEstimator
    from sklearn.model_selection import FixedThresholdClassifier

    wrapped = FixedThresholdClassifier(
        FrozenEstimator(model), threshold=threshold, response_method="predict_proba"
    )
    return wrapped.fit(x, y)


def decision_threshold(model: Any) -> float | None:
    """The threshold a model applies itself (`with_decision_threshold`), or None for a bare one."""
    threshold = getattr(model, "threshold", None)
    return float(threshold) if isinstance(threshold, int | float) else None
