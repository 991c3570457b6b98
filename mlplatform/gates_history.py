"""What the instance remembers about gate results across runs."""

import dagster as dg

from mlplatform.config.active import GATES


def blocking_checks(asset: str) -> list[str]:
    section = getattr(GATES, asset)
    return [name for name in type(section).model_fields if getattr(section, name).blocking]


def failed_blocking_checks(instance: dg.DagsterInstance, asset: str, partition: str) -> list[str]:
    """The blocking checks of `asset` whose latest evaluation for `partition` failed."""
    failed = []
    for name in blocking_checks(asset):
        history = instance.event_log_storage.get_asset_check_execution_history(
            dg.AssetCheckKey(dg.AssetKey(asset), name), limit=50
        )
        latest = next((r for r in history if r.partition == partition), None)
        if latest is not None and latest.evaluation is not None and not latest.evaluation.passed:
            failed.append(name)
    return failed
