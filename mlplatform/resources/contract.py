"""The dataset contract in effect, as a resource so a run can point at another one."""

from __future__ import annotations

from functools import cache
from pathlib import Path
from typing import TYPE_CHECKING

import dagster as dg
from pydantic import Field

if TYPE_CHECKING:
    from mlplatform.config.gates import QualityGates
    from mlplatform.core.contract import Contract


@cache
def _load(path: str) -> Contract:
    from mlplatform.core.contract import load_contract

    return load_contract(path)


class DatasetContract(dg.ConfigurableResource):
    """Columns, types, rules, id, event time and target of the dataset (a YAML file)."""

    path: str = Field(description="Path of the dataset contract: a dataset folder's contract.yaml.")

    def load(self) -> Contract:
        return _load(self.path)

    def gates(self) -> QualityGates:
        """The gates of the contract's dataset folder (its quality_gates.yaml over the packaged)."""
        from mlplatform.config.gates import gates_for

        return gates_for(Path(self.path).parent)
