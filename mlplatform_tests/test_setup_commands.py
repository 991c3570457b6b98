"""The set-up behind `make test`: system packages installed where possible, a clear message and a
CI failure where not."""

import os
import shutil
import subprocess
from pathlib import Path

import pytest

from mlplatform_tests.conftest import IN_CI

ROOT = Path(__file__).resolve().parents[1]
SCRIPT = ROOT / ".ci" / "install-system-packages"
PACKAGES = ("postgresql", "prometheus", "chromium", "graphviz", "docker-compose")


def run_without_package_tools(tmp_path: Path, ci: str) -> subprocess.CompletedProcess:
    """The script on a PATH holding only what a shell needs: no dpkg-query (every package reads
    as missing), no apt-get, no sudo."""
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    for tool in ("bash", "grep", "id", "env"):
        os.symlink(shutil.which(tool), bin_dir / tool)
    return subprocess.run(
        [str(bin_dir / "bash"), str(SCRIPT)],
        env={"PATH": str(bin_dir), "CI": ci},
        capture_output=True,
        text=True,
        timeout=60,
    )


@pytest.mark.parametrize(("ci", "status"), [("true", 1), ("", 0)])
def test_without_a_package_manager_it_names_what_is_missing(tmp_path, ci, status):
    result = run_without_package_tools(tmp_path, ci)
    assert result.returncode == status, result.stderr
    assert "apt-get not found" in result.stderr
    for package in PACKAGES:
        assert package in result.stderr


def test_make_test_installs_the_system_packages_first():
    dry_run = subprocess.run(
        ["make", "-n", "test"], cwd=ROOT, capture_output=True, text=True, timeout=60
    )
    assert dry_run.returncode == 0, dry_run.stderr
    commands = dry_run.stdout.splitlines()
    install = commands.index(".ci/install-system-packages")
    assert install < min(i for i, line in enumerate(commands) if "pytest" in line)


def test_with_everything_present_it_installs_nothing():
    if not IN_CI:
        pytest.skip("outside CI, pytest may run without `make test` having installed them")
    result = subprocess.run(
        [str(SCRIPT)], capture_output=True, text=True, timeout=600, env={**os.environ}
    )
    # The suite's own run already installed them (make test ran the script before pytest).
    assert result.returncode == 0, result.stderr
    assert "all present" in result.stdout
