"""The settings in effect for this process, loaded once when the code location loads.

Partition start, the feature window and the defaults shown in the Launchpad are fixed at load time;
resources and run config can still be changed per run.
"""

from mlplatform.config.gates import gates_for
from mlplatform.config.orchestration import load_error_handling, load_orchestration
from mlplatform.config.settings import load_settings
from mlplatform.core.contract import load_contract

SETTINGS = load_settings()
# The gates are keyed by the contract's `name:`, here (severities, fixed at load) as at run time
# (thresholds), so both always come from the same file.
GATES = gates_for(load_contract(SETTINGS.contract).name)
ORCHESTRATION = load_orchestration()
ERROR_HANDLING = load_error_handling()
