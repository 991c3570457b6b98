from collections.abc import Iterator
from typing import Any

import dagster as dg
import pandas as pd

from mlplatform.checks.common import gate_checks, gate_results
from mlplatform.config.gates import gates_for
from mlplatform.core import quality
from mlplatform.resources.contract import DatasetContract
from mlplatform.resources.mlflow import ChampionScore, MlflowResource
from mlplatform.stages import carried_out

# The champion as `not_worse_than_champion` scored it, in that check's metadata: registration in
# the same run reads it there instead of loading and scoring the champion a second time.
CHAMPION_SCORE = "champion"
_CHAMPION_CHECK = dg.AssetCheckKey(dg.AssetKey("trained_model"), "not_worse_than_champion")


@gate_checks(
    "trained_model",
    {
        "accuracy": "Accuracy on the test split.",
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
    mlflow: MlflowResource,
) -> Iterator[dg.AssetCheckResult]:
    with carried_out(context, "checks"):
        contract = dataset_contract.load()
        gates = gates_for(contract.name).trained_model
        champion = mlflow.score_champion(mlflow.model_name_for(contract.name), features)
        outcomes = quality.trained_model_gates(
            trained_model["test_metrics"],
            champion.metric(gates.not_worse_than_champion.metric),
            gates,
        )
        details = outcomes["not_worse_than_champion"].details
        details["basis"] = champion.basis
        details[CHAMPION_SCORE] = champion.as_record()
        yield from gate_results("trained_model", gates, outcomes)


def champion_scored_in_run(
    instance: dg.DagsterInstance, run_id: str, partition: str
) -> ChampionScore | None:
    """The champion as this run's `not_worse_than_champion` check scored it for `partition`
    (the latest evaluation), or None when the run evaluated no such check."""
    events = instance.all_logs(run_id, of_type=dg.DagsterEventType.ASSET_CHECK_EVALUATION)
    for event in reversed(events):
        evaluation = event.dagster_event.asset_check_evaluation_data  # type: ignore[union-attr]
        if evaluation.asset_check_key == _CHAMPION_CHECK and evaluation.partition == partition:
            recorded = evaluation.metadata.get(CHAMPION_SCORE)
            return None if recorded is None else ChampionScore.from_record(recorded.value)
    return None
