from collections.abc import Iterator
from typing import Any

import dagster as dg
import pandas as pd

from mlplatform.automation.execution import step_tags
from mlplatform.automation.policies import carried_out, retry_policy
from mlplatform.checks.common import gate_result, gate_specs
from mlplatform.config.active import GATES
from mlplatform.config.gates import gates_for
from mlplatform.core import quality
from mlplatform.resources.contract import DatasetContract

ASSET = "trained_model"
gates = GATES.trained_model


@dg.multi_asset_check(
    name="trained_model_checks",
    retry_policy=retry_policy("checks"),
    op_tags=step_tags("checks"),
    specs=gate_specs(
        ASSET,
        gates,
        {
            "accuracy": "Accuracy on the test split (the protocol's gate).",
            "roc_auc": "ROC-AUC on the test split.",
            "pr_auc": "PR-AUC (average precision) on the test split.",
            "recall": "Recall at the chosen decision threshold.",
            "not_worse_than_champion": "Not worse than the champion on the same test split.",
        },
        also_reads=("features",),
    ),
    ins={"trained_model": dg.AssetIn(), "features": dg.AssetIn()},
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

    where = f"trained_model_checks[{context.partition_key}]"
    with carried_out(context, "checks", where):
        contract = dataset_contract.load()
        gates = gates_for(contract.name).trained_model
        metrics = trained_model["test_metrics"]
        for name in ("accuracy", "roc_auc", "pr_auc", "recall"):
            floor = getattr(gates, name)
            yield gate_result(
                ASSET, name, floor, quality.metric_floor(name, metrics[name], floor.min)
            )
        rule = gates.not_worse_than_champion
        model_name = registered_model_name(contract.name)
        _, champion_value, basis = champion_metric(
            MlflowClient(), model_name, features, rule.metric
        )
        outcome = quality.not_worse_than(
            rule.metric, metrics[rule.metric], champion_value, rule.tolerance
        )
        outcome.details["basis"] = basis
        yield gate_result(ASSET, "not_worse_than_champion", rule, outcome)
