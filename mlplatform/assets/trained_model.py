"""Training: a scikit-learn Pipeline fitted on the training split and tracked in MLflow."""

from typing import Any

import dagster as dg
import pandas as pd

from mlplatform.assets.common import metric_metadata
from mlplatform.config.active import SETTINGS
from mlplatform.config.launchpad import launchpad_config
from mlplatform.resources.contract import DatasetContract
from mlplatform.resources.mlflow import MlflowResource, run_link
from mlplatform.stages import carried_out, stage_asset

# The Launchpad's config: the training settings' fields, bounds and defaults (platform.yaml).
TrainedModelConfig = launchpad_config("TrainedModelConfig", SETTINGS.training)


# Types a HistGradientBoosting pipeline is made of, beyond skops' defaults: the model is stored in
# the skops format (no arbitrary code on load) with exactly these allowed.
SKOPS_TRUSTED_TYPES = [
    "functools.partial",
    "sklearn.ensemble._hist_gradient_boosting.predictor.TreePredictor",
    "sklearn.utils.validation.check_array",
]


def pip_requirements() -> list[str]:
    """Pinned from the running environment: MLflow's own inference takes 15-20 s per model."""
    from importlib.metadata import version

    return [
        f"{package}=={version(package)}"
        for package in ("scikit-learn", "pandas", "numpy", "mlflow")
    ]


@stage_asset(
    "training",
    kinds={"scikitlearn", "mlflow"},
    # One training at a time on this machine: the `training` pool (limit in dagster.yaml).
    pool="training",
    io_manager_key="json_io_manager",
    description=(
        "HistGradientBoostingClassifier pipeline trained on the features' training split; "
        "threshold chosen on validation, metrics on test; one MLflow run with the model."
    ),
)
def trained_model(
    context: dg.AssetExecutionContext,
    config: TrainedModelConfig,
    features: pd.DataFrame,
    dataset_contract: DatasetContract,
    mlflow: MlflowResource,
) -> dg.Output[dict[str, Any]]:
    from mlflow.models import infer_signature

    from mlplatform.core.features import model_columns
    from mlplatform.core.train import train_model
    from mlplatform.stages.code_version import code_version

    contract = dataset_contract.load()
    categorical, numeric = model_columns(features, contract)
    hyperparameters = config.model_dump(exclude={"threshold_metric"})
    with carried_out(context, "training"), mlflow.run() as run_id:
        result = train_model(
            features, categorical, numeric, hyperparameters, config.threshold_metric
        )
        mlflow.set_tags(
            {
                "dagster_partition": context.partition_key,
                "dagster_asset": "trained_model",
                "code_version": code_version(),
                "dataset_contract": contract.name,
            }
        )
        mlflow.log_params(
            {
                **config.model_dump(),
                "model": "HistGradientBoostingClassifier",
                "decision_threshold": result.threshold,
                "feature_window_days": SETTINGS.features.window_days,
                **{f"rows_{split}": size for split, size in result.split_sizes.items()},
            }
        )
        mlflow.log_metrics(
            {
                **{f"test_{k}": v for k, v in result.test_metrics.items()},
                **{f"validation_{k}": v for k, v in result.validation_metrics.items()},
            }
        )
        example = features.loc[features["split"] == "train", result.input_columns].head(5)
        model_info = mlflow.log_sklearn_model(
            result.pipeline,
            name="model",
            signature=infer_signature(example, result.pipeline.predict(example)),
            input_example=example,
            pip_requirements=pip_requirements(),
            metadata={"decision_threshold": result.threshold},
            skops_trusted_types=SKOPS_TRUSTED_TYPES,
        )
    record = {
        "partition": context.partition_key,
        "mlflow_run_id": run_id,
        "model_uri": model_info.model_uri,
        "decision_threshold": result.threshold,
        "input_columns": result.input_columns,
        "test_metrics": result.test_metrics,
        "validation_metrics": result.validation_metrics,
        "split_sizes": result.split_sizes,
        "code_version": code_version(),
    }
    return dg.Output(
        record,
        metadata={
            "mlflow_run_id": run_id,
            "mlflow_run": run_link(mlflow.tracking_uri, mlflow.experiment_id, run_id),
            "model_uri": model_info.model_uri,
            "decision_threshold": dg.MetadataValue.float(result.threshold),
            **metric_metadata("test_", result.test_metrics),
            **metric_metadata("validation_", result.validation_metrics),
            "train_rows": result.split_sizes.get("train", 0),
            "input_columns": dg.MetadataValue.json(result.input_columns),
        },
    )
