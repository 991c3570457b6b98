"""Turning a gate's settings and a measured outcome into Dagster check specs and results."""

from collections.abc import Callable, Iterator
from typing import Any

import dagster as dg

from mlplatform.config.active import GATES
from mlplatform.config.gates import Gate
from mlplatform.core.gate_outcome import GateOutcome
from mlplatform.stages import daily_partitions
from mlplatform.stages.definition import stage_checks


def gate_specs(
    asset: str,
    gates: Any,
    descriptions: dict[str, str],
    also_reads: tuple[str, ...] = (),
) -> list[dg.AssetCheckSpec]:
    """One partitioned check spec per gate of a stage; ERROR gates block what follows.
    `also_reads` names other assets the checks load."""
    specs = []
    for name, description in descriptions.items():
        gate: Gate = getattr(gates, name)
        kind = "ERROR, blocking" if gate.blocking else gate.severity
        specs.append(
            dg.AssetCheckSpec(
                name,
                asset=asset,
                description=f"{description} [{kind}]",
                blocking=gate.blocking,
                partitions_def=daily_partitions,
                additional_deps=list(also_reads),
            )
        )
    return specs


def gate_checks(
    asset: str, descriptions: dict[str, str], also_reads: tuple[str, ...] = ()
) -> Callable[..., dg.AssetChecksDefinition]:
    """The decorator of a stage's quality gates: one multi-asset check `<asset>_checks` with a
    spec per gate (severity from quality_gates.yaml), reading `asset` and `also_reads`."""
    return stage_checks(
        name=f"{asset}_checks",
        # The model's gates decide what registration may do: in the champion lane, before scoring.
        in_champion_lane=asset == "trained_model",
        specs=gate_specs(asset, getattr(GATES, asset), descriptions, also_reads),
        ins={name: dg.AssetIn() for name in (asset, *also_reads)},
    )


def _metadata_value(value: Any, key: str = "") -> Any:
    """Numbers stay numbers (the UI plots them over partitions); a `<measure>_by_<thing>` mapping
    of numbers (`psi_by_feature`) and a list of flat records with the same keys (calibration
    `bins`) are tables a person can sort, not JSON blobs."""
    if value is None:
        return dg.MetadataValue.text("n/a")
    if isinstance(value, bool | int | float | str):
        return value
    if _is_records(value):
        return dg.MetadataValue.table(
            records=[dg.TableRecord(record) for record in value],
            schema=dg.TableSchema(
                columns=[dg.TableColumn(name, _column_type(value[0][name])) for name in value[0]]
            ),
        )
    measure, by, thing = key.partition("_by_")
    if by and isinstance(value, dict) and all(_is_number(v) for v in value.values()):
        return dg.MetadataValue.table(
            records=[dg.TableRecord({thing: str(k), measure: v}) for k, v in value.items()],
            schema=dg.TableSchema(
                columns=[
                    dg.TableColumn(thing, "string"),
                    dg.TableColumn(measure, "int" if _all_int(value) else "float"),
                ]
            ),
        )
    return dg.MetadataValue.json(value)


def _is_records(value: Any) -> bool:
    return (
        isinstance(value, list)
        and bool(value)
        and all(isinstance(r, dict) and list(r) == list(value[0]) for r in value)
        and all(isinstance(v, bool | int | float | str) for r in value for v in r.values())
    )


def _column_type(value: Any) -> str:
    if isinstance(value, bool):
        return "bool"
    return "int" if isinstance(value, int) else "float" if isinstance(value, float) else "string"


def _is_number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


def _all_int(mapping: dict[str, Any]) -> bool:
    return all(isinstance(v, int) for v in mapping.values())


def gate_result(asset: str, name: str, gate: Gate, outcome: GateOutcome) -> dg.AssetCheckResult:
    """The check's result; an outcome too thin to judge is a warning whatever the gate's severity
    (a blocking gate blocks only on ERROR)."""
    blocks = gate.blocking and not outcome.inconclusive
    return dg.AssetCheckResult(
        asset_key=asset,
        check_name=name,
        passed=outcome.passed,
        severity=dg.AssetCheckSeverity.ERROR if blocks else dg.AssetCheckSeverity.WARN,
        description=outcome.summary,
        metadata={
            "observed": _metadata_value(outcome.observed),
            "threshold": _metadata_value(outcome.threshold),
            "summary": outcome.summary,
            "inconclusive": outcome.inconclusive,
            **{key: _metadata_value(value, key) for key, value in outcome.details.items()},
        },
    )


def gate_results(
    asset: str, gates: Any, outcomes: dict[str, GateOutcome]
) -> Iterator[dg.AssetCheckResult]:
    """One check result per gate outcome of a stage, each with its gate's severity."""
    for name, outcome in outcomes.items():
        yield gate_result(asset, name, getattr(gates, name), outcome)
