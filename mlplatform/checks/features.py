from collections.abc import Iterator

import dagster as dg
import pandas as pd

from mlplatform.checks.common import gate_checks, gate_results
from mlplatform.config.active import CONTRACT, GATES
from mlplatform.core import feature_gates
from mlplatform.stages import carried_out, partition_day


@gate_checks(
    "features",
    {
        "finite_values": "No infinity in numeric features, no missing category.",
        "drift": "Population stability index of each feature, the day against earlier days.",
        "no_target_leakage": "No single feature predicts the target almost perfectly.",
    },
)
def features_checks(
    context: dg.AssetCheckExecutionContext,
    features: pd.DataFrame,
) -> Iterator[dg.AssetCheckResult]:
    with carried_out(context, "checks"):
        contract, gates = CONTRACT, GATES.features
        outcomes = feature_gates.features_gates(features, contract, gates, partition_day(context))
        yield from gate_results("features", gates, outcomes)
