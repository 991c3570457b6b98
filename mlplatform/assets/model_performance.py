"""After deployment: how each model version that scored a day did, once that day's outcomes are
known, recomputed as late outcomes arrive; what it should be doing before they are (the estimate
from its calibrated probabilities); and what the live evidence says about the challenger and the
version the champion replaced.

One partition is one scored day. Its cost follows the day's rows and the outcomes that arrived
within `outcomes.max_delay_days` of it (the contract), never the history.
"""

from collections.abc import Iterator
from typing import Any

import dagster as dg
import pandas as pd

from mlplatform.assets.common import metric_metadata
from mlplatform.assets.shadow_scores import (
    CHALLENGER_ROLE,
    PREVIOUS_CHAMPION_ROLE,
    ROLE_COLUMN,
)
from mlplatform.checks.common import gate_result, gate_specs
from mlplatform.config.active import CONTRACT, GATES, SETTINGS
from mlplatform.config.launchpad import launchpad_config
from mlplatform.resources.mlflow import MlflowResource
from mlplatform.stages import carried_out, partition_day, stage_asset

CHAMPION_ROLE = "champion"
# The champion's own scores of the week before: the reference its score distribution is held to.
SCORE_REFERENCE_DAYS = 7
_gates = GATES.model_performance
# The live comparisons' settings, changeable per run in the Launchpad (defaults: platform.yaml).
ModelPerformanceConfig = launchpad_config("ModelPerformanceConfig", SETTINGS.monitoring)
_delay = CONTRACT.outcomes.max_delay_days if CONTRACT.outcomes else 0


def _backtest(tags: dict[str, str], metric: str) -> Any:
    """The version's test-split figure for `metric` (recorded at registration) as an Interval,
    or None for a version registered before the interval and positives were recorded."""
    from mlplatform.core.uncertainty import Interval

    value, bounds = tags.get(f"test_{metric}"), tags.get(f"test_{metric}_interval")
    positives, rows = tags.get("test_positives"), tags.get("test_rows")
    if value is None or bounds is None or positives is None or rows is None:
        return None
    low, high = (float(x) for x in bounds.strip("[]").split(","))
    return Interval(float(value), low, high, int(positives), int(rows), "backtest")


@stage_asset(
    "monitoring",
    kinds={"mlflow", "pandas", "parquet"},
    # Run by the outcomes_arrived sensor when outcomes of the day arrive, not on upstream updates.
    automated=False,
    description=(
        "Realized performance of each model version that scored the day (the champion, and in "
        "shadow the challenger and the version it replaced), on the outcomes known so far, with "
        "95% intervals and coverage; the estimate from calibrated probabilities; the live "
        "comparisons, and the promotion or rollback they call for."
    ),
    ins={
        # The day's scores, and the week before it: the champion's own reference for its score
        # distribution.
        "batch_scores": dg.AssetIn(
            partition_mapping=dg.TimeWindowPartitionMapping(
                start_offset=-SCORE_REFERENCE_DAYS,
                end_offset=0,
                allow_nonexistent_upstream_partitions=True,
            ),
            metadata={"allow_missing_partitions": True},
        ),
        "shadow_scores": dg.AssetIn(
            # Days scored before shadowing existed, or with nothing to shadow.
            metadata={"allow_missing_partitions": True, "allow_no_partitions": True},
        ),
        "outcomes": dg.AssetIn(
            # Outcomes of the day's events arrive on the day itself and up to max_delay_days after.
            partition_mapping=dg.TimeWindowPartitionMapping(
                start_offset=0, end_offset=_delay, allow_nonexistent_upstream_partitions=True
            ),
            metadata={"allow_missing_partitions": True, "allow_no_partitions": True},
        ),
    },
    check_specs=gate_specs(
        "model_performance",
        _gates,
        {
            "realized_above_floor": "The champion's realized metric is not confidently below "
            "its floor.",
            "realized_vs_backtest": "The champion's realized metric is not confidently below its "
            "own backtest (test split at training) by more than the margin.",
            "estimate_matches_realized": "The estimate made before the outcomes arrived holds "
            "the realized figure (else the estimate missed: concept drift).",
            "not_worse_than_predecessor": "The champion is not confidently worse than the "
            "version it replaced, on the same live rows.",
            "score_distribution": "The champion's score distribution is stable against its "
            "week before (PSI).",
        },
    ),
)
def model_performance(
    context: dg.AssetExecutionContext,
    config: ModelPerformanceConfig,
    batch_scores: pd.DataFrame,
    shadow_scores: pd.DataFrame,
    outcomes: pd.DataFrame,
    mlflow: MlflowResource,
) -> Iterator[dg.Output | dg.AssetCheckResult]:
    from mlplatform.core.estimated_performance import estimated_performance
    from mlplatform.core.realized_performance import realized_performance
    from mlplatform.core.reconciled_outcomes import day_outcomes, labelled

    contract, monitoring = CONTRACT, config
    seed, resamples = SETTINGS.training.random_state, monitoring.resamples
    day = partition_day(context)
    with carried_out(context, "monitoring"):
        from mlplatform.core.days import on_day

        of_the_day = on_day(batch_scores[contract.event_time], day)
        earlier_scores, batch_scores = batch_scores[~of_the_day], batch_scores[of_the_day]
        if batch_scores.empty:
            raise dg.Failure(
                f"batch_scores[{day}] holds no scores: score the day first", allow_retries=False
            )
        name = mlflow.model_name_for(contract.name)
        known = day_outcomes(outcomes, day)
        champion_version = str(batch_scores["model_version"].iloc[0]) if len(batch_scores) else None
        roles = {CHAMPION_ROLE: batch_scores.assign(**{ROLE_COLUMN: CHAMPION_ROLE})}
        if len(shadow_scores):
            for role, frame in shadow_scores.groupby(ROLE_COLUMN, sort=False):
                roles[str(role)] = frame
        with mlflow.reading():
            tags = {
                str(frame["model_version"].iloc[0]): mlflow.client.get_model_version(
                    name, str(frame["model_version"].iloc[0])
                ).tags
                for frame in roles.values()
                if len(frame)
            }
        thresholds = {v: float(t.get("decision_threshold", 0.5)) for v, t in tags.items()}

        rows, realized, estimated = [], {}, None
        outcomes_known = 0
        for role, frame in roles.items():
            if not len(frame):
                continue
            version = str(frame["model_version"].iloc[0])
            labels, scores = labelled(frame, known, contract.id)
            result = realized_performance(
                labels, scores, thresholds[version], scored_rows=len(frame),
                seed=seed, resamples=resamples,
            )  # fmt: skip
            realized[role] = (version, result, frame)
            row = {"day": day.isoformat(), "role": role, "model_version": version}
            row.update(result.to_metadata())
            if role == CHAMPION_ROLE:
                estimated = estimated_performance(
                    frame["score"].to_numpy(), thresholds[version],
                    seed=seed, simulations=resamples,
                    dispersion=float(tags[version].get("estimate_dispersion", 1.0)),
                )  # fmt: skip
                row.update(estimated.to_metadata())
                outcomes_known = len(labels)
            rows.append(row)
        table = pd.DataFrame(rows)

        verdicts = _live_verdicts(realized, known, contract.id, thresholds, config)
        alias_move = (
            _act_on(context, mlflow, name, champion_version, verdicts, config)
            if champion_version is not None
            else None
        )

    champion = realized.get(CHAMPION_ROLE)
    champion_metrics = champion[1].metrics if champion else None
    metric = _gates.realized_above_floor.metric
    metadata: dict[str, Any] = {
        "dagster/row_count": len(table),
        "model_name": name,
        "model_version": champion_version or "none",
        "outcomes_known": outcomes_known,
        "versions": dg.MetadataValue.md(_versions_table(table)),
        # Every version's figures (the shadows' too), for readers other than the UI's table.
        "realized_by_role": dg.MetadataValue.json(
            {
                str(row["role"]): {k: v for k, v in row.items() if pd.notna(v)}
                for row in table.to_dict("records")
            }
        ),
        "live_verdicts": dg.MetadataValue.json(
            {role: v.evidence | {"reason": v.reason} for role, v in verdicts.items()}
        ),
        "alias_move": alias_move or "none",
    }
    numbers = {}
    if champion:
        numbers.update({f"realized_{k}": v for k, v in champion[1].to_metadata().items()})
    if estimated is not None:
        numbers.update(estimated.to_metadata())
    # Numbers with stable names: the UI plots them over the scored days.
    metadata.update(
        metric_metadata("", {k: v for k, v in numbers.items() if isinstance(v, int | float)})
    )
    backtest = _backtest(tags.get(champion_version, {}), metric) if champion_version else None
    if backtest is not None:
        metadata[f"backtest_{metric}"] = dg.MetadataValue.float(round(backtest.value, 6))
    yield dg.Output(table, metadata=metadata)
    yield from _gate_results(
        champion_version, champion_metrics, backtest, estimated, verdicts, champion, earlier_scores
    )


def _live_verdicts(
    realized: dict[str, Any],
    known: pd.DataFrame,
    id_column: str,
    thresholds: dict[str, float],
    monitoring: Any,
) -> dict[str, Any]:
    """The paired comparisons on the rows both versions scored and whose outcome is known."""
    from mlplatform.core.live_comparison import live_comparison
    from mlplatform.core.reconciled_outcomes import labelled

    if CHAMPION_ROLE not in realized:
        return {}
    champion_version, _, champion_frame = realized[CHAMPION_ROLE]
    verdicts = {}
    # The challenger (newer) against the champion: promote?; the champion (newer) against the
    # version it replaced: roll back?
    for role, direction in ((CHALLENGER_ROLE, "promote"), (PREVIOUS_CHAMPION_ROLE, "rollback")):
        if role not in realized:
            continue
        version, _, frame = realized[role]
        paired = champion_frame[[id_column, "score"]].merge(
            frame[[id_column, "score"]], on=id_column, suffixes=("_champion", "_other")
        )
        labels, champion_scores = labelled(
            paired.rename(columns={"score_champion": "score"}), known, id_column
        )
        _, other_scores = labelled(
            paired.rename(columns={"score_other": "score"}), known, id_column
        )
        arguments = {
            "margin": monitoring.live_promotion_margin,
            "min_positives": monitoring.live_min_positives,
            "seed": SETTINGS.training.random_state,
            "resamples": monitoring.resamples,
        }
        other, champion = (other_scores, version), (champion_scores, champion_version)
        (newer, newer_version), (older, older_version) = (
            (other, champion) if direction == "promote" else (champion, other)
        )
        verdict = live_comparison(
            labels, newer, older, monitoring.live_metric, direction=direction,
            newer_threshold=thresholds[newer_version], older_threshold=thresholds[older_version],
            **arguments,
        )  # fmt: skip
        verdict.evidence["version"] = version
        verdict.evidence["champion_version"] = champion_version
        verdicts[role] = verdict
    return verdicts


def _act_on(
    context: dg.AssetExecutionContext,
    mlflow: MlflowResource,
    name: str,
    scored_by: str,
    verdicts: dict[str, Any],
    monitoring: Any,
) -> str | None:
    """Move `champion` when the live evidence calls for it: back to the version it replaced when
    the champion is confidently worse than it (if `on_worse_than_predecessor` says rollback; an
    alert otherwise), else to a challenger confidently better. Only while the version that scored
    these rows still holds `champion`: evidence about a champion that has moved on is history."""
    day = partition_day(context)
    current = mlflow.current_champion(name)
    if current is None or str(current.version) != scored_by:
        return None
    move = None
    predecessor = verdicts.get(PREVIOUS_CHAMPION_ROLE)
    challenger = verdicts.get(CHALLENGER_ROLE)
    if predecessor is not None and predecessor.action == "rollback":
        if monitoring.on_worse_than_predecessor == "rollback":
            move = (predecessor, f"rollback on live outcomes of {day}: {predecessor.reason}")
        else:
            context.log.warning(
                f"{predecessor.reason} The alias stays (monitoring.on_worse_than_predecessor: "
                "alert): run the `rollback` job to move it back."
            )
    if move is None and challenger is not None and challenger.action == "promote":
        move = (challenger, f"promoted on live outcomes of {day}: {challenger.reason}")
    if move is None:
        return None
    verdict, reason = move
    target = verdict.evidence["version"]
    mlflow.move_champion(name, target, reason, verdict.evidence)
    context.log.warning(f"{name}: champion moved from v{scored_by} to v{target}: {reason}")
    return f"v{scored_by} -> v{target}: {reason}"


def _gate_results(
    champion_version: str | None,
    metrics: dict[str, Any] | None,
    backtest: Any,
    estimated: Any,
    verdicts: dict[str, Any],
    champion: Any,
    earlier_scores: pd.DataFrame,
) -> Iterator[dg.AssetCheckResult]:
    from mlplatform.core import gate_outcome, model_gates, performance_gates

    asset, gates = "model_performance", _gates
    floor = gates.realized_above_floor
    realized = (metrics or {}).get(floor.metric)
    outcomes = {
        "realized_above_floor": (
            model_gates.metric_floor(floor.metric, realized, floor.min, floor.min_positives)
            if realized is not None
            else gate_outcome.GateOutcome(
                False, None, floor.min, "cannot judge: no realized figure yet", inconclusive=True
            )
        ),
    }
    rule = gates.realized_vs_backtest
    if backtest is None:
        outcomes["realized_vs_backtest"] = gate_outcome.GateOutcome(
            False, None, -rule.margin, "cannot judge: the version records no backtest interval",
            inconclusive=True,
        )  # fmt: skip
    else:
        outcomes["realized_vs_backtest"] = performance_gates.down_from_backtest(
            rule.metric, (metrics or {}).get(rule.metric), backtest, rule.margin,
            rule.min_positives,
        )  # fmt: skip
    rule = gates.estimate_matches_realized
    outcomes["estimate_matches_realized"] = performance_gates.estimate_gap(
        rule.metric,
        (metrics or {}).get(rule.metric),
        (estimated.metrics or {}).get(rule.metric) if estimated is not None else None,
        rule.tolerance,
        rule.min_positives,
    )
    predecessor = verdicts.get(PREVIOUS_CHAMPION_ROLE)
    outcomes["not_worse_than_predecessor"] = (
        gate_outcome.GateOutcome(True, None, None, "no predecessor scored these rows in shadow")
        if predecessor is None
        else gate_outcome.GateOutcome(
            predecessor.action not in ("rollback", "inconclusive"),
            predecessor.evidence.get("difference"),
            float(predecessor.evidence.get("margin", 0)),
            predecessor.reason,
            dict(predecessor.evidence),
            inconclusive=predecessor.action == "inconclusive",
        )
    )
    drift = gates.score_distribution
    reference = (
        earlier_scores.loc[earlier_scores["model_version"].astype(str) == champion_version, "score"]
        if len(earlier_scores)
        else pd.Series(dtype=float)
    )
    current = champion[2]["score"] if champion else pd.Series(dtype=float)
    outcomes["score_distribution"] = performance_gates.score_drift(
        reference.to_numpy(), current.to_numpy(), drift.max_psi, drift.bins
    )
    for name, outcome in outcomes.items():
        # The version judged, for the decay sensor's incidents (one per version).
        outcome.details.setdefault("model_version", champion_version or "none")
        if outcome.inconclusive:
            # A day's outcomes are still arriving: too few to judge is the normal state of every
            # new day, and the day is judged again as they come. Not a warning; the metadata
            # keeps `inconclusive`, which the decay sensor reads.
            outcome.passed = True
            outcome.summary = f"not judged yet: {outcome.summary}"
        yield gate_result(asset, name, getattr(gates, name), outcome)


def _versions_table(table: pd.DataFrame) -> str:
    """Per version: realized ROC-AUC and coverage with their intervals, for a person to read."""
    if table.empty:
        return "(nothing scored)"
    lines = [
        "| role | version | labelled / scored | positives | ROC-AUC [95%] | coverage [95%] |",
        "| --- | --- | --- | --- | --- | --- |",
    ]
    for row in table.to_dict("records"):
        auc = (
            f"{row['roc_auc']:.4f} [{row['roc_auc_low']:.4f}, {row['roc_auc_high']:.4f}]"
            if pd.notna(row.get("roc_auc"))
            else str(row.get("reason", "n/a"))
        )
        coverage = (
            f"{row['coverage']:.3f} [{row['coverage_low']:.3f}, {row['coverage_high']:.3f}]"
            if pd.notna(row.get("coverage"))
            else "n/a"
        )
        lines.append(
            f"| {row['role']} | v{row['model_version']} | {row['labelled_rows']} / "
            f"{row['scored_rows']} | {row['positives']} | {auc} | {coverage} |"
        )
    return "\n".join(lines)
