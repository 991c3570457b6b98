"""The dataset and settings in effect for this process, chosen once, when the code location loads.

This module is the one route by which assets, checks, sensors and jobs read the settings, the
dataset's contract and its gates: there is no resource or run config that points a run at another
dataset. A code location serves one dataset (`MLPLATFORM_DATASET` or `dataset:` in a settings
folder, read by `load_settings`); another dataset is another code location (or a restart), whose
definitions are built for it: the partitions' start and time zone, the feature window (its
partition mapping reaches back `label_delay_days` further), the gates' severities and the
Launchpad's defaults are all fixed here. A run therefore never mixes one dataset's severities with
another's thresholds, nor a contract with another dataset's settings.

Run config (Launchpad) can still tune a run; where data is read and stored, where MLflow is and
its accounts are the code location's, never run config (`mlplatform/resources/locked.py`).
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from mlplatform.config.gates import QualityGates, load_quality_gates
from mlplatform.config.orchestration import load_error_handling, load_orchestration
from mlplatform.config.settings import PlatformSettings, load_settings
from mlplatform.core.contract import Contract, load_contract


@dataclass(frozen=True)
class ActiveDataset:
    """The settings and, from the dataset folder they name, its contract and its gates (the
    folder's quality_gates.yaml over the packaged one, under a user's settings folder)."""

    settings: PlatformSettings
    contract: Contract
    gates: QualityGates


def load_active(
    environ: Mapping[str, str] | None = None, root: Path | None = None
) -> ActiveDataset:
    """The settings from `environ` (the process's by default), and the contract and gates of the
    dataset folder they name: all three from one load, so they describe the same dataset."""
    environ = os.environ if environ is None else environ
    settings = load_settings(environ=environ, root=root)
    return ActiveDataset(
        settings=settings,
        contract=load_contract(settings.contract),
        gates=load_quality_gates(environ=dict(environ), dataset=settings.dataset),
    )


ACTIVE = load_active()
SETTINGS = ACTIVE.settings
# Its label delay shapes the feature window's partition mapping; its outcomes decide whether the
# monitoring assets exist.
CONTRACT = ACTIVE.contract
# Severities (blocking or not, in the check specs) and thresholds (read by the check bodies).
GATES = ACTIVE.gates
ORCHESTRATION = load_orchestration()
ERROR_HANDLING = load_error_handling()
