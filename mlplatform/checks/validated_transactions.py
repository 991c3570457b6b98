from collections.abc import Iterator

import dagster as dg
import pandas as pd

from mlplatform.checks.common import gate_checks, gate_results
from mlplatform.config.active import CONTRACT, GATES
from mlplatform.core import data_gates
from mlplatform.stages import carried_out


@gate_checks(
    "validated_transactions",
    {
        "quarantine_rate": "Share of the day's rows sent to quarantine.",
        "null_rate": "Missing values per nullable column.",
        "value_ranges": "Every value inside its contract range or category list.",
        "unique_ids": "No id appears twice.",
        "label_rate": "Share of positive labels within bounds.",
    },
    also_reads=("quarantined_transactions",),
)
def validated_transactions_checks(
    context: dg.AssetCheckExecutionContext,
    validated_transactions: pd.DataFrame,
    quarantined_transactions: pd.DataFrame,
) -> Iterator[dg.AssetCheckResult]:
    from mlplatform.core.validate import carried_in_quarantine

    with carried_out(context, "checks"):
        contract, gates = CONTRACT, GATES.validated_transactions
        # Rows carried here because they fall in no partition are not the day's own rejects.
        own_rejected = int((~carried_in_quarantine(quarantined_transactions, contract)).sum())
        outcomes = data_gates.validated_transactions_gates(
            validated_transactions, own_rejected, contract, gates
        )
        yield from gate_results("validated_transactions", gates, outcomes)
