"""Training: the best of the candidate model families, chosen by time-ordered folds inside the
training split, refit, thresholded on validation, evaluated once on test, tracked in MLflow."""

from typing import Any

import dagster as dg
import pandas as pd

from mlplatform.assets.common import metric_metadata
from mlplatform.config.active import SETTINGS
from mlplatform.config.gates import gates_for
from mlplatform.config.launchpad import launchpad_config
from mlplatform.resources.contract import DatasetContract
from mlplatform.resources.mlflow import MlflowResource, run_link
from mlplatform.stages import carried_out, stage_asset

# The Launchpad's config: how the search runs. Which families and spaces stay in the settings file
# (a dataset's choice; Dagster's run config has no list of choices).
TrainedModelConfig = launchpad_config(
    "TrainedModelConfig",
    SETTINGS.training,
    fields=(
        "selection_metric", "folds", "trials_per_family", "time_budget_seconds",
        "max_search_negatives", "threshold_metric", "random_state", "bootstrap_resamples",
    ),
)  # fmt: skip

# The libraries a model family needs besides these, for the logged model's requirements.
FAMILY_PACKAGES = {"lightgbm": ("lightgbm",)}


def pip_requirements(family: str) -> list[str]:
    """Pinned from the running environment: MLflow's own inference takes 15-20 s per model."""
    from importlib.metadata import version

    packages = (
        "scikit-learn",
        "pandas",
        "numpy",
        "mlflow",
        "skops",
        *FAMILY_PACKAGES.get(family, ()),
    )
    return [f"{package}=={version(package)}" for package in packages]


def candidates_table(rows: list[dict[str, Any]]) -> dg.MetadataValue:
    return dg.MetadataValue.table(
        records=[
            dg.TableRecord(
                {
                    "family": row["family"],
                    "selected": row["selected"],
                    "fold_score": row["score"],
                    "fold_std": row["fold_std"],
                    "trials": row["trials"],
                    "seconds": row["seconds"],
                    "params": ", ".join(
                        f"{k}={v:.4g}" if isinstance(v, float) else f"{k}={v}"
                        for k, v in row["params"].items()
                    ),
                }
            )
            for row in rows
        ],
        schema=dg.TableSchema(
            columns=[
                dg.TableColumn("family", "string"),
                dg.TableColumn("selected", "bool"),
                dg.TableColumn("fold_score", "float", description="mean over the folds"),
                dg.TableColumn("fold_std", "float"),
                dg.TableColumn("trials", "int"),
                dg.TableColumn("seconds", "float"),
                dg.TableColumn("params", "string", description="the family's best trial"),
            ]
        ),
    )


@stage_asset(
    "training",
    kinds={"scikitlearn", "mlflow"},
    # One training at a time on this machine: the `training` pool (limit in dagster.yaml).
    pool="training",
    io_manager_key="json_io_manager",
    description=(
        "The best of the candidate model families (logistic regression, HistGradientBoosting, "
        "LightGBM), chosen by expanding-window folds over the training split, refit on it; "
        "threshold chosen on validation; test metrics with 95% intervals; compared with the "
        "champion on the same test rows; one MLflow run with the model and every candidate."
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
    from mlplatform.core.models import SKOPS_TRUSTED_TYPES
    from mlplatform.core.train import train_model
    from mlplatform.core.uncertainty import interval_metadata
    from mlplatform.stages.code_version import code_version

    contract = dataset_contract.load()
    settings = SETTINGS.training.model_copy(update=config.model_dump())
    rule = gates_for(contract.name).trained_model.not_worse_than_champion
    categorical, numeric = model_columns(features, contract)
    with carried_out(context, "training"), mlflow.run() as run_id:
        result = train_model(
            features, categorical, numeric, settings.search_plan(), settings.threshold_metric,
            settings.bootstrap_resamples, log=context.log.info,
        )  # fmt: skip
        comparison = mlflow.compare_with_champion(
            mlflow.model_name_for(contract.name), features, result.test_scores, result.threshold,
            rule.metric, seed=settings.random_state, resamples=settings.bootstrap_resamples,
        )  # fmt: skip
        candidates = result.selection.candidates_table()
        test = interval_metadata(result.test_intervals)
        mlflow.set_tags(
            {
                "dagster_partition": context.partition_key,
                "dagster_asset": "trained_model",
                "code_version": code_version(),
                "dataset_contract": contract.name,
                "model_family": result.family,
            }
        )
        mlflow.log_params(
            {
                **config.model_dump(),
                "model_family": result.family,
                **{f"{result.family}.{k}": v for k, v in result.params.items()},
                "decision_threshold": result.threshold,
                "feature_window_days": SETTINGS.features.window_days,
                **{f"rows_{split}": size for split, size in result.split_sizes.items()},
            }
        )
        mlflow.log_metrics(
            {
                **{f"test_{k}": v for k, v in test.items()},
                **{f"validation_{k}": v for k, v in result.validation_metrics.items()},
                **{f"selection_{row['family']}": row["score"] for row in candidates},
            }
        )
        mlflow.log_table(candidates, "candidates.json")
        mlflow.log_table(
            [{"family": t.family, "score": t.score, "fold_scores": t.fold_scores,
              "seconds": t.seconds, "params": t.params} for t in result.selection.trials],
            "trials.json",
        )  # fmt: skip
        example = features.loc[features["split"] == "train", result.input_columns].head(5)
        model_info = mlflow.log_sklearn_model(
            result.model,
            name="model",
            signature=infer_signature(example, result.model.predict(example)),
            input_example=example,
            pip_requirements=pip_requirements(result.family),
            metadata={"decision_threshold": result.threshold, "model_family": result.family},
            serialization_format="skops",
            skops_trusted_types=list(SKOPS_TRUSTED_TYPES),
        )
    record = {
        "partition": context.partition_key,
        "mlflow_run_id": run_id,
        "model_uri": model_info.model_uri,
        "model_family": result.family,
        "params": result.params,
        "decision_threshold": result.threshold,
        "input_columns": result.input_columns,
        "test_metrics": result.test_metrics,
        "test_intervals": {k: v.to_dict() for k, v in result.test_intervals.items()},
        "validation_metrics": result.validation_metrics,
        "champion_comparison": comparison,
        "candidates": candidates,
        "split_sizes": result.split_sizes,
        "code_version": code_version(),
    }
    selection = result.selection
    return dg.Output(
        record,
        metadata={
            "mlflow_run_id": run_id,
            "mlflow_run": run_link(mlflow.tracking_uri, mlflow.experiment_id, run_id),
            "model_uri": model_info.model_uri,
            "model_family": result.family,
            "candidates": candidates_table(candidates),
            "search": dg.MetadataValue.json(
                {
                    "trials": len(selection.trials),
                    "folds": selection.folds_used,
                    "sample_rows": selection.sample_rows,
                    "sample_positives": selection.sample_positives,
                    "negative_weight": round(selection.negative_weight, 4),
                    "budget_reached": selection.budget_reached,
                    "seconds": round(selection.seconds, 2),
                }
            ),
            "decision_threshold": dg.MetadataValue.float(result.threshold),
            **metric_metadata(
                "test_", {k: v for k, v in test.items() if k not in ("positives", "rows")}
            ),
            "test_positives": test["positives"],
            "test_rows": test["rows"],
            **metric_metadata("validation_", result.validation_metrics),
            "champion_comparison": dg.MetadataValue.json(comparison),
            "train_rows": result.split_sizes.get("train", 0),
            "input_columns": dg.MetadataValue.json(result.input_columns),
        },
    )
