from collections.abc import Iterator
from typing import Any

import dagster as dg
import pandas as pd

from mlplatform.checks.common import gate_checks, gate_results
from mlplatform.config.gates import gates_for
from mlplatform.core import quality
from mlplatform.resources.contract import DatasetContract
from mlplatform.stages import carried_out


@gate_checks(
    "trained_model",
    {
        "accuracy": "Accuracy on the test split (the protocol's gate).",
        "roc_auc": "ROC-AUC on the test split.",
        "pr_auc": "PR-AUC (average precision) on the test split.",
        "recall": "Recall at the chosen decision threshold.",
        "not_worse_than_champion": "Not worse than the champion on the same test split.",
    },
    also_reads=("features",),
)
def trained_model_checks(
    context: dg.AssetCheckExecutionContext,
    trained_model: dict[str, Any],
    features: pd.DataFrame,
    dataset_contract: DatasetContract,
    mlflow: dg.ResourceParam[Any],
) -> Iterator[dg.AssetCheckResult]:
    from mlflow.tracking import MlflowClient

    from mlplatform.registry import champion_metric, registered_model_name

    with carried_out(context, "checks"):
        contract = dataset_contract.load()
        gates = gates_for(contract.name).trained_model
        _, champion_value, basis = champion_metric(
            MlflowClient(),
            registered_model_name(contract.name),
            features,
            gates.not_worse_than_champion.metric,
        )
        outcomes = quality.trained_model_gates(trained_model["test_metrics"], champion_value, gates)
        outcomes["not_worse_than_champion"].details["basis"] = basis
        yield from gate_results("trained_model", gates, outcomes)
