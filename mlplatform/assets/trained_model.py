"""Training: the best of the candidate model families, chosen by time-ordered folds inside the
training split, refit, calibrated and thresholded on validation, evaluated once on test (its
calibration too), tracked in MLflow."""

from dataclasses import asdict
from typing import TYPE_CHECKING, Any

import dagster as dg
import pandas as pd

from mlplatform.assets.common import metric_metadata
from mlplatform.config.active import CONTRACT, GATES, SETTINGS
from mlplatform.config.launchpad import launchpad_config
from mlplatform.resources.mlflow import MlflowResource
from mlplatform.stages import carried_out, stage_asset

# The Launchpad's config: how the search runs. Which families and spaces stay in the settings file
# (a dataset's choice; Dagster's run config has no list of choices).
TrainedModelConfig = launchpad_config(
    "TrainedModelConfig",
    SETTINGS.training,
    fields=(
        "selection_metric", "folds", "trials_per_family", "time_budget_seconds",
        "max_search_negatives", "calibration", "threshold_metric", "random_state",
        "bootstrap_resamples",
    ),
)  # fmt: skip

if TYPE_CHECKING:
    from mlplatform.core.evaluation_plots import Evaluation

# The libraries a model family needs besides these, for the logged model's requirements.
FAMILY_PACKAGES = {"lightgbm": ("lightgbm",)}


def pip_requirements(*families: str) -> list[str]:
    """Pinned from the running environment: MLflow's own inference takes 15-20 s per model."""
    from importlib.metadata import version

    packages = (
        "scikit-learn",
        "pandas",
        "numpy",
        "mlflow",
        "skops",
        *sorted({package for family in families for package in FAMILY_PACKAGES.get(family, ())}),
    )
    return [f"{package}=={version(package)}" for package in packages]


def candidates_table(rows: list[dict[str, Any]]) -> dg.MetadataValue:
    return _table(
        [
            {
                "family": row["family"],
                "selected": row["selected"],
                "fold_score": row["score"],
                "fold_std": row["fold_std"],
                "trials": row["trials"],
                "seconds": row["seconds"],
                "params": _one_line_params(row),
            }
            for row in rows
        ],
        [
            dg.TableColumn("family", "string"),
            dg.TableColumn("selected", "bool"),
            dg.TableColumn("fold_score", "float", description="mean over the folds"),
            dg.TableColumn("fold_std", "float"),
            dg.TableColumn("trials", "int"),
            dg.TableColumn("seconds", "float"),
            dg.TableColumn("params", "string", description="the family's best trial"),
        ],
    )


def _one_line_params(row: dict[str, Any]) -> str:
    """The candidate's parameters in one line of the table; the soft vote's are its members'
    (each listed in its own row), which spelled out made its row 18 lines tall."""
    from mlplatform.core.models import SOFT_VOTE
    from mlplatform.core.selection import describe_params

    if row["family"] == SOFT_VOTE:
        members = sorted({name.split(".", 1)[0] for name in row["params"]})
        return f"mean probability of {', '.join(members)} (each as in its own row)"
    return describe_params(row["params"])


def _table(rows: list[dict[str, Any]], columns: list[dg.TableColumn]) -> dg.MetadataValue:
    return dg.MetadataValue.table(
        records=[dg.TableRecord(row) for row in rows], schema=dg.TableSchema(columns=columns)
    )


# What the trained model's page shows of its evaluation: every plot the MLflow run has.
PLOTS_SHOWN = (
    "roc_curve.png", "precision_recall_curve.png", "confusion_matrix.png", "calibration.png",
    "score_distribution.png", "permutation_importance.png",
)  # fmt: skip


def evaluation_metadata(evaluation: "Evaluation") -> dict[str, dg.MetadataValue]:
    """The plots as images in Markdown (the UI renders them inline; Dagster has no image metadata
    type), each drawn for the width of the UI's dialog, and the confusion matrix and importance
    as tables."""
    import base64

    from mlplatform.core.evaluation_plots import panel_png

    images = "\n\n".join(
        f"![{file}](data:image/png;base64,{base64.b64encode(panel_png(figure)).decode()})"
        for file, figure in evaluation.figures.items()
        if file in PLOTS_SHOWN
    )
    counts = evaluation.confusion
    confusion = [
        {"actual": "positive", "flagged": counts["true_positives"],
         "passed": counts["false_negatives"]},
        {"actual": "negative", "flagged": counts["false_positives"],
         "passed": counts["true_negatives"]},
    ]  # fmt: skip
    importance = [
        {"feature": row.feature, "importance": round(row.importance, 5),
         "spread": round(row.spread, 5)}
        for row in evaluation.importance
    ]  # fmt: skip
    return {
        "evaluation_plots": dg.MetadataValue.md(images),
        "confusion_matrix": _table(
            confusion,
            [
                dg.TableColumn("actual", "string"),
                dg.TableColumn("flagged", "int", description="score >= threshold"),
                dg.TableColumn("passed", "int", description="score < threshold"),
            ],
        ),
        "permutation_importance": _table(
            importance,
            [
                dg.TableColumn("feature", "string"),
                dg.TableColumn("importance", "float", description="drop in test ROC-AUC shuffled"),
                dg.TableColumn("spread", "float", description="standard deviation over repeats"),
            ],
        ),
        "importance_rows": dg.MetadataValue.int(evaluation.importance_rows),
    }


@stage_asset(
    "training",
    kinds={"scikitlearn", "mlflow"},
    # One training at a time on this machine: the `training` pool (limit in dagster.yaml).
    pool="training",
    io_manager_key="json_io_manager",
    description=(
        "The best of the candidate model families (logistic regression, HistGradientBoosting, "
        "LightGBM) or their soft vote, chosen by expanding-window folds over the training split, "
        "refit on it; calibrated, then thresholded, on validation; test metrics, calibration "
        "error and Brier score with 95% intervals; compared "
        "with the champion on the same test rows; one MLflow run with the model and every "
        "candidate."
    ),
)
def trained_model(
    context: dg.AssetExecutionContext,
    config: TrainedModelConfig,
    features: pd.DataFrame,
    mlflow: MlflowResource,
) -> dg.Output[dict[str, Any]]:
    from mlflow.models import infer_signature

    from mlplatform.core.calibration import calibration_report, ece_and_brier
    from mlplatform.core.days import days_present
    from mlplatform.core.evaluation_plots import evaluate_model
    from mlplatform.core.features import LABEL_COLUMN, model_columns
    from mlplatform.core.models import SKOPS_TRUSTED_TYPES
    from mlplatform.core.train import split_xy, train_model
    from mlplatform.core.uncertainty import interval_metadata
    from mlplatform.stages.code_version import code_version

    contract = CONTRACT
    settings = SETTINGS.training.model_copy(update=config.model_dump())
    gates = GATES.trained_model
    rule = gates.not_worse_than_champion
    categorical, numeric = model_columns(features, contract)
    run_name = f"trained_model {context.partition_key}"
    with carried_out(context, "training"), mlflow.run(name=run_name) as run_id:
        result = train_model(
            features, categorical, numeric, settings.search_plan(), settings.threshold_metric,
            settings.bootstrap_resamples, settings.calibration, log=context.log.info,
        )  # fmt: skip
        # The test split's calibration, in the bins its gate judges.
        bins = gates.calibrated.bins
        calibration = calibration_report(
            result.test_labels, result.test_scores, bins=bins, seed=settings.random_state,
            resamples=settings.bootstrap_resamples,
        )  # fmt: skip
        before = ece_and_brier(result.test_labels, result.uncalibrated_test_scores, bins)
        calibration_scores = {
            "ece": calibration.ece.value, "ece_low": calibration.ece.low,
            "ece_high": calibration.ece.high, "brier": calibration.brier.value,
            "brier_low": calibration.brier.low, "brier_high": calibration.brier.high,
            "ece_uncalibrated": before[0], "brier_uncalibrated": before[1],
        }  # fmt: skip
        dispersion = _estimate_dispersion(context, result, features, contract, settings)
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
                "calibration_bins": bins,
                "feature_window_days": SETTINGS.features.window_days,
                **{f"rows_{split}": size for split, size in result.split_sizes.items()},
            }
        )
        window = days_present(features[contract.event_time])
        # What it learned from, as MLflow's dataset input: digest, schema, rows (splits in params).
        dataset = mlflow.log_dataset(
            features, name=f"{contract.name} features {window[0]}..{window[-1]}",
            context="training", targets=LABEL_COLUMN,
        )  # fmt: skip
        mlflow.log_table(candidates, "candidates.json")
        mlflow.log_table(
            [{"family": t.family, "score": t.score, "fold_scores": t.fold_scores,
              "seconds": t.seconds, "params": t.params} for t in result.selection.trials],
            "trials.json",
        )  # fmt: skip
        x_test, _ = split_xy(features, "test", result.input_columns)
        evaluation = evaluate_model(
            result.model, x_test, result.test_labels, result.test_scores,
            result.validation_labels, result.validation_scores, result.threshold,
            seed=settings.random_state,
        )  # fmt: skip
        for file, figure in evaluation.figures.items():
            mlflow.log_figure(figure, f"evaluation/{file}")
        mlflow.log_table(
            [asdict(row) for row in evaluation.importance], "evaluation/permutation_importance.json"
        )
        mlflow.log_table(calibration.table(), "evaluation/calibration_bins.json")
        example = features.loc[features["split"] == "train", result.input_columns].head(5)
        model_info = mlflow.log_sklearn_model(
            result.model,
            name="model",
            signature=infer_signature(example, result.model.predict(example)),
            input_example=example,
            pip_requirements=pip_requirements(*result.families),
            metadata={
                "decision_threshold": result.threshold,
                "model_family": result.family,
                "calibration": result.calibration,
            },
            serialization_format="skops",
            skops_trusted_types=list(SKOPS_TRUSTED_TYPES),
        )
        # Logged after the model, so MLflow 3 links them to it (and to the data they rest on).
        mlflow.log_metrics(
            {
                **{f"test_{k}": v for k, v in test.items()},
                **{f"test_{k}": v for k, v in calibration_scores.items()},
                **{f"validation_{k}": v for k, v in result.validation_metrics.items()},
                **{f"selection_{row['family']}": row["score"] for row in candidates},
            },
            model_id=model_info.model_id,
            dataset=dataset,
        )
    record = {
        "partition": context.partition_key,
        "mlflow_run_id": run_id,
        "model_uri": model_info.model_uri,
        "model_family": result.family,
        "params": result.params,
        "decision_threshold": result.threshold,
        "calibration_method": result.calibration,
        "calibration": calibration.to_dict(),
        # How much wider than label noise alone the estimate's interval must be for this model.
        "estimate_dispersion": dispersion,
        "input_columns": result.input_columns,
        "test_metrics": result.test_metrics,
        "test_intervals": {k: v.to_dict() for k, v in result.test_intervals.items()},
        "validation_metrics": result.validation_metrics,
        "champion_comparison": comparison,
        "candidates": candidates,
        "split_sizes": result.split_sizes,
        "window_days": window,
        "code_version": code_version(),
    }
    selection = result.selection
    return dg.Output(
        record,
        metadata={
            "mlflow_run_id": run_id,
            "mlflow_run": mlflow.run_link(run_id),
            "model_uri": model_info.model_uri,
            "model_family": result.family,
            "candidates": candidates_table(candidates),
            **evaluation_metadata(evaluation),
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
            "calibration": result.calibration,
            **metric_metadata("test_", calibration_scores),
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


def _estimate_dispersion(context, result, features, contract, settings) -> float:
    """By how much `model_performance`'s estimate (from calibrated probabilities, before outcomes
    arrive) must widen its interval for this model: measured on the test split in ten
    time-ordered blocks, the calibrator refitted on resamples of the validation split
    (core/estimate_dispersion.py). 1 (label noise alone) when the test split is too
    small to measure it, which the log says."""
    from mlplatform.core.days import days_present
    from mlplatform.core.estimate_dispersion import estimate_dispersion

    day_rows = round(len(features) / max(1, len(days_present(features[contract.event_time]))))
    try:
        measured = estimate_dispersion(
            result.test_labels, result.test_scores, 10, seed=settings.random_state,
            simulations=settings.bootstrap_resamples, threshold=result.threshold,
            calibration=result.calibration, calibration_labels=result.validation_labels,
            calibration_scores=result.validation_scores, resamples=20, scale_rows=day_rows,
        )  # fmt: skip
    except ValueError as error:
        context.log.warning(f"Estimate dispersion not measured ({error}): 1, label noise alone")
        return 1.0
    return round(float(measured.factor), 4)
