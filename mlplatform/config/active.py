"""The settings in effect for this process, loaded once when the code location loads.

Partition start, the feature window and the defaults shown in the Launchpad are fixed at load time;
resources and run config can still be changed per run.
"""

from mlplatform.config.gates import gates_for
from mlplatform.config.orchestration import load_error_handling, load_orchestration
from mlplatform.config.settings import load_settings
from mlplatform.core.contract import load_contract

SETTINGS = load_settings()
# The dataset's contract as the definitions see it: its label delay shapes the feature window's
# partition mapping (fixed at load, like the window itself).
CONTRACT = load_contract(SETTINGS.contract)
# The gates are keyed by the dataset folder, here (severities, fixed at load) as at run time
# (thresholds, `DatasetContract.gates()`), so both always come from the same files.
GATES = gates_for(SETTINGS.dataset)
ORCHESTRATION = load_orchestration()
ERROR_HANDLING = load_error_handling()
