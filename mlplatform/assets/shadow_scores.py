"""Deployment in shadow: the newest `challenger` and the version the champion replaced score the
same rows as the champion. Their scores are kept for the live comparisons on outcomes
(`model_performance`); no decision is taken from them.
"""

import dagster as dg
import pandas as pd

from mlplatform.assets.batch_scores import rows_of_the_day, score_with_version
from mlplatform.assets.common import preview
from mlplatform.config.active import CONTRACT
from mlplatform.resources.mlflow import CHALLENGER, MlflowResource
from mlplatform.stages import carried_out, stage_asset
from mlplatform.stages.lane import settled_model_steps

# What each shadow version stands for, in the scores' `role` column.
CHALLENGER_ROLE = "challenger"
PREVIOUS_CHAMPION_ROLE = "previous_champion"
ROLE_COLUMN = "role"


def shadow_versions(mlflow: MlflowResource, name: str) -> dict[str, str]:
    """role -> version of the models that shadow the champion now: the `challenger` (when it is
    not the champion itself) and the version the champion replaced."""
    champion = mlflow.current_champion(name)
    if champion is None:
        return {}
    shadows = {}
    challenger = mlflow.version_by_alias(name, CHALLENGER)
    if challenger is not None and str(challenger.version) != str(champion.version):
        shadows[CHALLENGER_ROLE] = str(challenger.version)
    previous = mlflow.predecessor_of(name, str(champion.version))
    if previous is not None and previous != str(champion.version):
        shadows[PREVIOUS_CHAMPION_ROLE] = previous
    return shadows


@stage_asset(
    "deployment",
    kinds={"mlflow", "pandas", "parquet"},
    # Like batch_scores: in the day's runs, behind training in the champion lane, so it shadows
    # the champion that run's registration left.
    automated=False,
    description=(
        "The day's rows scored in shadow by the `challenger` and by the version the champion "
        "replaced: kept for the live comparisons on outcomes, never used for decisions."
    ),
)
def shadow_scores(
    context: dg.AssetExecutionContext, features: pd.DataFrame, mlflow: MlflowResource
) -> dg.Output[pd.DataFrame]:
    contract = CONTRACT
    # The challenger and predecessor this run's registration leaves, retries included.
    settled_model_steps(context)
    with carried_out(context, "deployment"):
        name = mlflow.model_name_for(contract.name)
        frames = []
        with mlflow.reading():
            versions = shadow_versions(mlflow, name)
            day_rows = rows_of_the_day(context, features, contract) if versions else None
            for role, version in versions.items():
                model, input_columns = mlflow.load_with_inputs(f"models:/{name}/{version}")
                missing = [c for c in input_columns if c not in day_rows.columns]
                if missing:
                    # A version from before the features changed: it cannot shadow these rows,
                    # and a shadow never stops the day.
                    context.log.warning(
                        f"{name} v{version} ({role}) needs columns the features lack {missing}: "
                        "it does not shadow this day"
                    )
                    continue
                scored, _ = score_with_version(
                    context,
                    model,
                    day_rows,
                    input_columns,
                    contract,
                    name,
                    mlflow.client.get_model_version(name, version),
                )
                frames.append(scored.assign(**{ROLE_COLUMN: role}))
    columns = [contract.id, contract.event_time, "score", "decision", "model_version", ROLE_COLUMN]
    scores = pd.concat(frames, ignore_index=True) if frames else pd.DataFrame(columns=columns)
    if not versions:
        context.log.info(f"{name}: nothing shadows the champion (no challenger, no predecessor)")
    return dg.Output(
        scores,
        metadata={
            "dagster/row_count": len(scores),
            "model_name": name,
            "shadow_versions": dg.MetadataValue.json(versions),
            "preview": preview(context, scores.head(10)),
        },
    )
