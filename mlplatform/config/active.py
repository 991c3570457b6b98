"""The settings in effect for this process, loaded once when the code location loads.

Partition start, the feature window and the defaults shown in the Launchpad are fixed at load time;
resources and run config can still be changed per run.
"""

from pathlib import Path

from mlplatform.config.gates import load_quality_gates
from mlplatform.config.orchestration import load_error_handling, load_orchestration
from mlplatform.config.settings import load_settings

SETTINGS = load_settings()
GATES = load_quality_gates(contract_name=Path(SETTINGS.contract).stem)
ORCHESTRATION = load_orchestration()
ERROR_HANDLING = load_error_handling()
