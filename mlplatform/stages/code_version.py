"""The code version written on every MLflow run and registered model version."""

from __future__ import annotations

import os
import subprocess
from functools import cache
from pathlib import Path

from mlplatform import __version__


@cache
def code_version() -> str:
    """`<package version>+<git commit>`; the commit comes from MLPLATFORM_GIT_COMMIT (set in images)
    or from git when running from a checkout."""
    commit = os.environ.get("MLPLATFORM_GIT_COMMIT")
    if not commit:
        try:
            commit = subprocess.run(
                ["git", "rev-parse", "--short=12", "HEAD"],
                cwd=Path(__file__).parent,
                capture_output=True,
                text=True,
                timeout=5,
                check=True,
            ).stdout.strip()
        except (OSError, subprocess.SubprocessError):
            commit = "unknown"
    return f"{__version__}+{commit}"
