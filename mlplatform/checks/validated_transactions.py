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

ASSET = "validated_transactions"
gates = GATES.validated_transactions


@dg.multi_asset_check(
    name="validated_transactions_checks",
    retry_policy=retry_policy("checks"),
    op_tags=step_tags("checks"),
    specs=gate_specs(
        ASSET,
        gates,
        {
            "quarantine_rate": "Share of the day's rows sent to quarantine.",
            "null_rate": "Missing values per nullable column.",
            "value_ranges": "Every value inside its contract range or category list.",
            "unique_ids": "No id appears twice.",
            "label_rate": "Share of positive labels within bounds.",
        },
        also_reads=("quarantined_transactions",),
    ),
    ins={"validated_transactions": dg.AssetIn(), "quarantined_transactions": dg.AssetIn()},
)
def validated_transactions_checks(
    context: dg.AssetCheckExecutionContext,
    validated_transactions: pd.DataFrame,
    quarantined_transactions: pd.DataFrame,
    dataset_contract: DatasetContract,
) -> Iterator[dg.AssetCheckResult]:
    where = f"validated_transactions_checks[{context.partition_key}]"
    with carried_out(context, "checks", where):
        contract = dataset_contract.load()
        gates = gates_for(contract.name).validated_transactions
        outcomes = quality.validated_transactions_gates(
            validated_transactions, len(quarantined_transactions), contract, gates
        )
        yield from gate_results(ASSET, gates, outcomes)
