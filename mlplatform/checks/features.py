from collections.abc import Iterator

import dagster as dg
import pandas as pd

from mlplatform.automation.execution import step_tags
from mlplatform.automation.policies import carried_out, retry_policy
from mlplatform.checks.common import gate_results, gate_specs
from mlplatform.config.active import GATES
from mlplatform.config.gates import gates_for
from mlplatform.core import quality
from mlplatform.resources.contract import DatasetContract

ASSET = "features"
gates = GATES.features


@dg.multi_asset_check(
    name="features_checks",
    retry_policy=retry_policy("checks"),
    op_tags=step_tags("checks"),
    specs=gate_specs(
        ASSET,
        gates,
        {
            "finite_values": "No infinity in numeric features, no missing category.",
            "drift": "Population stability index of each feature, the day against earlier days.",
            "no_target_leakage": "No single feature predicts the target almost perfectly.",
        },
    ),
)
def features_checks(
    context: dg.AssetCheckExecutionContext,
    features: pd.DataFrame,
    dataset_contract: DatasetContract,
) -> Iterator[dg.AssetCheckResult]:
    where = f"features_checks[{context.partition_key}]"
    with carried_out(context, "checks", where):
        contract = dataset_contract.load()
        gates = gates_for(contract.name).features
        outcomes = quality.features_gates(features, contract, gates, context.partition_key)
        yield from gate_results(ASSET, gates, outcomes)
